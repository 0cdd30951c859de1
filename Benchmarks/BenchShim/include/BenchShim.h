// BenchShim: the C that only shm-bench needs (kept out of the library's CShim header).
#ifndef SHMIPC_BENCH_SHIM_H
#define SHMIPC_BENCH_SHIM_H

#include <stddef.h>
#include <stdint.h>

/// Two cache lines: the adjacent-line prefetcher pulls lines in pairs on x86-64.
#define BENCH_CACHE_PAIR 128

/// A cheap cycle-counter read for benchmarks (rdtsc on x86-64, cntvct on arm64).
static inline uint64_t shmipc_cycle_counter(void) {
#if defined(__x86_64__)
    return __builtin_ia32_rdtsc();
#elif defined(__aarch64__)
    uint64_t value;
    __asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(value));
    return value;
#else
    return 0;
#endif
}

/// Initializes a process-shared pthread mutex (recursive if asked) in shared memory: the
/// reference shm-bench measures ShmIPC's locks against. Returns 0 or an error number.
int shmipc_pthread_mutex_init_shared(void *mutex, int recursive);
/// sizeof(pthread_mutex_t), for sizing the segment that holds one.
size_t shmipc_pthread_mutex_size(void);

/// The benchmark's control block: a start barrier and the ping/pong words, each written by
/// a different side, each on its own cache-line pair.
typedef struct shmipc_bench_control {
    uint32_t arrived;           ///< start barrier: parties that arrived (atomic)
    uint32_t generation;        ///< start barrier: bumped when all arrived (atomic)
    uint8_t pad0[BENCH_CACHE_PAIR - 8];
    uint64_t ping;              ///< written by the parent only
    uint8_t pad1[BENCH_CACHE_PAIR - 8];
    uint64_t pong;              ///< written by the child only
    uint8_t pad2[BENCH_CACHE_PAIR - 8];
    uint64_t shared;            ///< one line both sides write (floor scenarios)
    uint8_t pad3[BENCH_CACHE_PAIR - 8];
    uint64_t child_result;      ///< a number the child reports back (e.g. elapsed ns)
    uint8_t pad4[BENCH_CACHE_PAIR - 8];
} shmipc_bench_control;

_Static_assert(offsetof(shmipc_bench_control, ping) == BENCH_CACHE_PAIR, "ping on its own pair");
_Static_assert(offsetof(shmipc_bench_control, pong) == 2 * BENCH_CACHE_PAIR, "pong a pair apart");
_Static_assert(offsetof(shmipc_bench_control, shared) == 3 * BENCH_CACHE_PAIR, "shared line");
_Static_assert(sizeof(shmipc_bench_control) == 5 * BENCH_CACHE_PAIR, "bench control size");

#endif
