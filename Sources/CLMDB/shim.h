#ifndef LARDER_CLMDB_SHIM_H
#define LARDER_CLMDB_SHIM_H

// Only LarderStorage imports this module. The map's `header` path is resolved relative to the
// module map's folder, so the system header is reached through this shim (see BUILD-NOTES).
#include <lmdb.h>

#endif
