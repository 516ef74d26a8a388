#include <sqlite3.h>

/// Turns off SQLite's memory statistics (sqlite3_config is variadic, which Swift cannot call):
/// without them every allocation skips a global mutex. Only effective before the library is
/// initialized (the first connection); SQLITE_MISUSE afterwards.
static inline int crm_sqlite3_disable_memstatus(void) {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}
