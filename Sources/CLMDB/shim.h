#ifndef LARDER_CLMDB_SHIM_H
#define LARDER_CLMDB_SHIM_H

// Only LarderStorage imports this module. The map's `header` path is resolved relative to the
// module map's folder, where no lmdb.h is, so the system header is reached through this shim.
#include <lmdb.h>

#endif
