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

// MARK: C references (references.c)

/// A classic single-producer single-consumer ring: the producer's tail and the consumer's head
/// on lines of their own, each side caching the other's index and reloading it only when the
/// ring looks full (or empty); one release store per item, or per batch. Items follow the
/// header: `capacity` (a power of two) slots of `item_size` bytes (items over 256 bytes are
/// copied through one heap buffer per call).
typedef struct shmipc_ref_spsc {
    uint64_t head;              ///< next slot to read: written by the consumer only
    uint8_t pad0[BENCH_CACHE_PAIR - 8];
    uint64_t tail;              ///< next slot to write: written by the producer only
    uint8_t pad1[BENCH_CACHE_PAIR - 8];
    uint64_t capacity;
    uint64_t item_size;
    uint8_t pad2[BENCH_CACHE_PAIR - 16];
} shmipc_ref_spsc;

size_t shmipc_ref_spsc_size(uint64_t capacity, uint64_t item_size);
void shmipc_ref_spsc_init(shmipc_ref_spsc *ring, uint64_t capacity, uint64_t item_size);
/// Puts items 0..<count (the number in each item's first 8 bytes), `batch` at a time (1: one
/// publish per item). Returns 0, or -1 when `deadline` (cycle-counter ticks; 0: none) passed.
int shmipc_ref_spsc_produce(shmipc_ref_spsc *ring, uint64_t count, uint64_t batch, uint64_t deadline);
/// Takes `count` items, up to `batch` per publish, copying each whole; `checksum` gets the sum
/// of their numbers.
int shmipc_ref_spsc_consume(shmipc_ref_spsc *ring, uint64_t count, uint64_t batch, uint64_t deadline, uint64_t *checksum);

/// A ping-pong over two rings of 8-byte items, `there` and `back` (the classic ring at the
/// shape of ShmIPC's SPSC round trip): the ping side puts i into `there` and takes i + 1 from
/// `back`, recording each round trip's cycles after `warmup`; the pong side answers `total`.
/// Both spin with pause. Return 0, -1 when `deadline` passed, -2 for a wrong answer.
int shmipc_ref_spsc_ping(shmipc_ref_spsc *there, shmipc_ref_spsc *back, uint64_t warmup, uint64_t count, uint64_t *cycles,
                         uint64_t deadline);
int shmipc_ref_spsc_pong(shmipc_ref_spsc *there, shmipc_ref_spsc *back, uint64_t total, uint64_t deadline);

/// Dmitry Vyukov's bounded MPMC queue: a sequence number per cell, the enqueue and dequeue
/// positions on lines of their own, claimed by compare-and-swap.
typedef struct shmipc_ref_mpmc_cell {
    uint64_t sequence;
    uint64_t value;
} shmipc_ref_mpmc_cell;

typedef struct shmipc_ref_mpmc {
    uint64_t enqueue_position;
    uint8_t pad0[BENCH_CACHE_PAIR - 8];
    uint64_t dequeue_position;
    uint8_t pad1[BENCH_CACHE_PAIR - 8];
    uint64_t mask;
    uint8_t pad2[BENCH_CACHE_PAIR - 8];
} shmipc_ref_mpmc;

size_t shmipc_ref_mpmc_size(uint64_t capacity);
void shmipc_ref_mpmc_init(shmipc_ref_mpmc *queue, uint64_t capacity);
int shmipc_ref_mpmc_put(shmipc_ref_mpmc *queue, uint64_t value, uint64_t deadline);
int shmipc_ref_mpmc_get(shmipc_ref_mpmc *queue, uint64_t *value, uint64_t deadline);
/// Puts 0..<count, one put each.
int shmipc_ref_mpmc_produce(shmipc_ref_mpmc *queue, uint64_t count, uint64_t deadline);
/// Takes `count` values, one get each; `checksum` gets their sum.
int shmipc_ref_mpmc_consume(shmipc_ref_mpmc *queue, uint64_t count, uint64_t deadline, uint64_t *checksum);

/// The spin floor with `pause`: round trips of a counter on one line. The ping side writes
/// odd numbers and waits for the next even one, timing each of the `count` round trips after
/// `warmup` untimed ones into `cycles` (cycle-counter ticks); the pong side answers `total`.
int shmipc_ref_spin_ping(uint64_t *line, uint64_t warmup, uint64_t count, uint64_t *cycles, uint64_t deadline);
int shmipc_ref_spin_pong(uint64_t *line, uint64_t total, uint64_t deadline);

/// `count` relaxed fetch-adds of 1 on `counter`.
void shmipc_ref_add(uint64_t *counter, uint64_t count);

#endif
