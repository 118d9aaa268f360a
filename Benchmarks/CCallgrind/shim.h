#ifndef LARDER_CCALLGRIND_SHIM_H
#define LARDER_CCALLGRIND_SHIM_H

// Valgrind's callgrind client requests for larder-compare's instruction counts (its `--phase`
// mode). They are magic instruction sequences that do nothing outside valgrind, so the harness
// calls them unconditionally. Without valgrind's headers they compile to nothing.
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define LARDER_HAS_CALLGRIND 1
#else
#define LARDER_HAS_CALLGRIND 0
#endif

/// Starts instrumenting (when valgrind was started with --instr-atstart=no) and zeroes the counters.
static inline void larder_callgrind_start(void) {
#if LARDER_HAS_CALLGRIND
    CALLGRIND_START_INSTRUMENTATION;
    CALLGRIND_ZERO_STATS;
#endif
}

/// Writes the counters since the last start to a dump labelled `label`, then stops instrumenting.
static inline void larder_callgrind_dump(const char *label) {
#if LARDER_HAS_CALLGRIND
    CALLGRIND_DUMP_STATS_AT(label);
    CALLGRIND_STOP_INSTRUMENTATION;
#else
    (void)label;
#endif
}

/// Non-zero under valgrind.
static inline int larder_running_on_valgrind(void) {
#if LARDER_HAS_CALLGRIND
    return (int)RUNNING_ON_VALGRIND;
#else
    return 0;
#endif
}

#endif
