#ifndef LARDER_CSQLITE_SHIM_H
#define LARDER_CSQLITE_SHIM_H

// Only the larder-compare harness imports this module (SQLite is a contestant, not a dependency
// of the store). The system header is reached through this shim, as for CLMDB.
#include <sqlite3.h>

// SQLITE_TRANSIENT is a macro casting -1 to a function pointer, which Swift cannot import:
// binding with it makes SQLite copy the bytes before the call returns.
static inline sqlite3_destructor_type larder_sqlite_transient(void) { return SQLITE_TRANSIENT; }

#endif
