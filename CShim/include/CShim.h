// CShim: only what Swift cannot import by itself. Every group says why it is here.
// No _GNU_SOURCE in this header: it would clash with the Glibc module Swift imports
// (Notes/0000-ground-rules.md, toolchain facts). GNU-only calls live out of line in shim.c.
#ifndef SHMIPC_CSHIM_H
#define SHMIPC_CSHIM_H

#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <linux/futex.h>
#include <linux/membarrier.h>

// MARK: futex — syscall(2) is variadic, so Swift cannot call it; FUTEX_* are macros.
// Shared futexes only (never FUTEX_PRIVATE_FLAG): the word lives in memory mapped by
// several processes. Both return the raw syscall result (-1 and errno on failure).

/// Sleeps while *word == expected, until woken or until the absolute CLOCK_MONOTONIC time
/// `deadline` (NULL: no timeout). FUTEX_WAIT_BITSET takes an absolute time, so a retry after
/// EINTR re-arms the same deadline: a signal never extends a timeout.
static inline long shmipc_futex_wait(uint32_t *word, uint32_t expected,
                                     const struct timespec *deadline) {
    return syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expected, deadline, NULL,
                   FUTEX_BITSET_MATCH_ANY);
}

/// Wakes at most `count` waiters parked on `word`; returns how many were woken.
static inline long shmipc_futex_wake(uint32_t *word, int32_t count) {
    return syscall(SYS_futex, word, FUTEX_WAKE, count, NULL, NULL, 0);
}

// MARK: CPU relax — an instruction, not a function Swift can reach.
/// The spin-loop hint: lets the sibling hyperthread run and avoids the memory-order
/// machine clear when the spin ends.
/// Asks for the cache line at `address` ahead of a read (a hint: never faults).
static inline void shmipc_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

static inline void shmipc_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

// MARK: wait status — WIFEXITED & co. are macros, which Swift does not import.
static inline int shmipc_wifexited(int status) { return WIFEXITED(status); }
static inline int shmipc_wexitstatus(int status) { return WEXITSTATUS(status); }
static inline int shmipc_wifsignaled(int status) { return WIFSIGNALED(status); }
static inline int shmipc_wtermsig(int status) { return WTERMSIG(status); }

// MARK: GNU-only calls — defined in shim.c, which may define _GNU_SOURCE.
/// Pins the calling thread to one CPU (sched_setaffinity + CPU_SET). Returns 0 or -1/errno.
int shmipc_pin_current_thread(int cpu);
/// Lets the calling thread run on every online CPU again.
int shmipc_unpin_current_thread(void);
/// The number of CPUs the calling thread may run on (CPU_COUNT of its affinity mask), or -1.
int shmipc_allowed_cpu_count(void);
/// memfd_create(2): an anonymous shared file, the base of inheritable segments. -1/errno.
int shmipc_memfd_create(const char *name, unsigned int flags);
/// Seals a memfd against shrinking and growing (F_ADD_SEALS), so no holder can truncate
/// it under another's mapping. Returns 0 or -1/errno.
int shmipc_memfd_seal_size(int fd);
/// MFD_CLOEXEC | MFD_ALLOW_SEALING, the flags inheritable segments are created with.
unsigned int shmipc_memfd_default_flags(void);
/// pipe2(O_CLOEXEC), atomically (no window in which a concurrent spawn inherits the ends);
/// the read end optionally non-blocking. Returns 0 or -1/errno.
int shmipc_pipe_cloexec(int fds[2], int nonblocking_read_end);
/// posix_spawn_file_actions_addclosefrom_np (glibc 2.34+): the child closes every descriptor
/// from `from` up, after the earlier actions. Returns 0 or an error number.
int shmipc_spawn_add_closefrom(posix_spawn_file_actions_t *actions, int from);

/// The calling thread's kernel thread id (gettid), cached in a thread-local and reset in the
/// child after fork(). Unique across processes among live threads: the owner mark of locks.
/// Inline with initial-exec TLS (one %fs-relative load): it is on every lock operation.
extern __thread int32_t shmipc_cached_thread_id __attribute__((tls_model("initial-exec")));
int32_t shmipc_thread_id_slow(void);
static inline int32_t shmipc_thread_id(void) {
    int32_t tid = shmipc_cached_thread_id;
    return __builtin_expect(tid != 0, 1) ? tid : shmipc_thread_id_slow();
}

// MARK: prctl — variadic, so Swift cannot call it.
/// Asks the kernel to send `sig` to this process when the thread that spawned it exits.
static inline int shmipc_set_parent_death_signal(int sig) {
    return (int)syscall(SYS_prctl, 1 /* PR_SET_PDEATHSIG */, (unsigned long)sig, 0UL, 0UL, 0UL);
}

// MARK: processes — fork is unavailable to Swift on some platforms, pidfd_open has no libc
// wrapper in this glibc, and the rest need GNU-only calls or a thread of plain C.
/// fork(2). The caller checks that this process is single-threaded first.
static inline pid_t shmipc_fork(void) { return fork(); }
/// pidfd_open(2): a descriptor that becomes readable when `pid` exits (Linux 5.3+).
static inline int shmipc_pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    return (int)syscall(434, pid, 0);
#endif
}
/// pidfd_send_signal(2): signals the process `pidfd` stands for, never a later one that
/// reused its pid (Linux 5.1+).
static inline int shmipc_pidfd_send_signal(int pidfd, int sig) {
#ifdef SYS_pidfd_send_signal
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
#else
    return (int)syscall(424, pidfd, sig, NULL, 0);
#endif
}
/// A close-on-exec AF_UNIX SOCK_SEQPACKET pair (message boundaries kept, descriptors can pass).
int shmipc_seqpacket_pair(int fds[2]);
/// Sends `length` bytes and `count` descriptors (SCM_RIGHTS) as one message; bytes sent or -1.
long shmipc_send_with_fds(int socket, const void *bytes, size_t length, const int *fds, int count);
/// Receives one message into `bytes` (at most `capacity`) and up to `max_fds` descriptors
/// (close-on-exec) into `fds`, their number into `*count`; bytes received (0: the peer closed)
/// or -1. A message or descriptor list that does not fit fails with EMSGSIZE (what did
/// arrive is closed).
long shmipc_receive_with_fds(int socket, void *bytes, size_t capacity, int *fds, int max_fds, int *count);
/// The number of threads in this process (from /proc/self/stat), or -1.
int shmipc_thread_count(void);
/// Starts a detached thread that blocks reading `fd` (a pipe whose write end only the parent
/// process holds) and SIGKILLs this process when the read returns: the parent has exited,
/// however it died. Returns 0 or an error number.
int shmipc_start_lifeline_watcher(int fd);

// MARK: shared layouts — the compiler checks these offsets (_Static_assert below), so a
// segment stays readable by every build of its layout version; Swift reads the fields by name
// (MemoryLayout<…>.offset(of:), folded to constants). A parking word (ParkingWord in Swift) is
// a futex word with its waiter count in the next 4 bytes: event, semaphore, the queue epochs,
// the joinable count.

/// "SHMIPC\0\1" read as a little-endian integer: the first 8 bytes of every ShmIPC object.
#define SHMIPC_MAGIC 0x0100434950494D53ULL
/// Size of the common header; the object's own state starts at a multiple of it.
#define SHMIPC_HEADER_SIZE 128
/// Cache-line pair size on x86-64 (the adjacent-line prefetcher pairs 64-byte lines).
#define SHMIPC_CACHE_PAIR 128

/// init_state values. The word is also a futex: attachers park on it while INITIALIZING.
enum {
    SHMIPC_INIT_EMPTY = 0,        ///< fresh zero-filled memory: the creator has not started
    SHMIPC_INIT_INITIALIZING = 1, ///< creator_pid is written; the creator is filling the object
    SHMIPC_INIT_READY = 2,        ///< every field and the object's state are published
};

/// The common header at offset 0 of every ShmIPC object (Notes/0000-ground-rules.md, the shared-memory contract).
/// Plain data only. Written once by the creator before init_state becomes READY
/// (release); read by attachers after they load READY (acquire).
typedef struct shmipc_segment_header {
    uint64_t magic;             ///< SHMIPC_MAGIC
    uint32_t layout_version;    ///< version of the object kind's layout
    uint32_t kind;              ///< ObjectKind raw value
    uint32_t init_state;        ///< SHMIPC_INIT_*; atomic; a futex word
    int32_t creator_pid;        ///< written before INITIALIZING is published
    uint64_t segment_size;      ///< bytes the creator sized the file to
    uint64_t capacity;          ///< element count (kind-specific meaning)
    uint64_t element_size;      ///< MemoryLayout<T>.size
    uint64_t element_stride;    ///< MemoryLayout<T>.stride
    uint64_t element_alignment; ///< MemoryLayout<T>.alignment
    uint64_t type_name_hash;    ///< FNV-1a 64 of the element type's reflected name
    uint64_t state_offset;      ///< where the object's own state starts
    uint64_t state_size;        ///< bytes of the object's own state
    char type_name[40];         ///< the element type's name, UTF-8, NUL-padded, cut to 40 bytes (for tools; the hash is what attachers check)
} shmipc_segment_header;

_Static_assert(sizeof(shmipc_segment_header) == SHMIPC_HEADER_SIZE, "header is 128 bytes");
_Static_assert(offsetof(shmipc_segment_header, magic) == 0, "magic first");
_Static_assert(offsetof(shmipc_segment_header, layout_version) == 8, "layout_version");
_Static_assert(offsetof(shmipc_segment_header, kind) == 12, "kind");
_Static_assert(offsetof(shmipc_segment_header, init_state) == 16, "init_state");
_Static_assert(offsetof(shmipc_segment_header, creator_pid) == 20, "creator_pid");
_Static_assert(offsetof(shmipc_segment_header, segment_size) == 24, "segment_size");
_Static_assert(offsetof(shmipc_segment_header, capacity) == 32, "capacity");
_Static_assert(offsetof(shmipc_segment_header, element_size) == 40, "element_size");
_Static_assert(offsetof(shmipc_segment_header, type_name_hash) == 64, "type_name_hash");
_Static_assert(offsetof(shmipc_segment_header, state_offset) == 72, "state_offset");
_Static_assert(offsetof(shmipc_segment_header, state_size) == 80, "state_size");
_Static_assert(offsetof(shmipc_segment_header, init_state) % 4 == 0, "futex word aligned");

// MARK: synchronization primitives — state that may sit alone in a segment or be embedded in
// another object's state. Every futex word is 32-bit and 4-byte aligned.

/// Lock word: 0 when free, else the owner's thread id | SHMIPC_LOCK_WAITERS.
#define SHMIPC_LOCK_WAITERS 0x80000000u
#define SHMIPC_LOCK_OWNER_MASK 0x3FFFFFFFu

/// Lock and RLock.
typedef struct shmipc_lock_state {
    uint32_t word;          ///< futex: owner tid | WAITERS, or 0
    uint32_t inconsistent;  ///< 1 once a dead owner's lock was taken over, until markConsistent()
    uint32_t recursion;     ///< RLock depth; written by the owner only
    uint32_t recoveries;    ///< times a dead owner's lock was taken over (a statistic; written by the new owner)
} shmipc_lock_state;
_Static_assert(sizeof(shmipc_lock_state) == 16, "lock state");

/// Semaphore and BoundedSemaphore. `value` and `waiters` are a parking word.
typedef struct shmipc_semaphore_state {
    uint32_t value;         ///< futex: the count
    uint32_t waiters;       ///< threads parked or about to park on `value`
    uint32_t maximum;       ///< bound for BoundedSemaphore; UINT32_MAX for Semaphore
    uint32_t reserved;
} shmipc_semaphore_state;
_Static_assert(sizeof(shmipc_semaphore_state) == 16, "semaphore state");

/// Event (and the pool's Doorbell, whose `flag` is a counter it rings). A parking word.
typedef struct shmipc_event_state {
    uint32_t flag;          ///< futex: 1 set, 0 clear
    uint32_t waiters;       ///< threads parked or about to park on `flag`
} shmipc_event_state;
_Static_assert(sizeof(shmipc_event_state) == 8, "event state");

/// Condition: its own recursive lock, and counters protected by that lock.
typedef struct shmipc_condition_state {
    shmipc_lock_state lock;
    uint32_t sequence;      ///< futex: bumped by every notify that wakes somebody
    uint32_t waiting;       ///< waiters registered (under the lock)
    uint32_t signals;       ///< notifications not yet consumed by a waiter (under the lock)
    uint32_t reserved;
} shmipc_condition_state;
_Static_assert(sizeof(shmipc_condition_state) == 32, "condition state");
_Static_assert(offsetof(shmipc_condition_state, sequence) == 16, "condition sequence");

/// Barrier: counters protected by its lock. `int32_t pids[parties]` follow the struct: the
/// pid of each party arrived in the current generation, by arrival index.
typedef struct shmipc_barrier_state {
    shmipc_lock_state lock;
    uint32_t generation;        ///< futex: bumped when a generation trips or breaks
    uint32_t count;             ///< parties arrived in the current generation
    uint32_t broken;            ///< 1 while broken (abort, timeout, dead party), until reset()
    uint32_t reserved0;
    uint32_t parties;
    uint32_t reserved1;
    uint64_t outcomes;          ///< bit g % 64: 1 if generation g ended broken, 0 if it tripped
} shmipc_barrier_state;
_Static_assert(sizeof(shmipc_barrier_state) == 48, "barrier state");
_Static_assert(offsetof(shmipc_barrier_state, generation) == 16, "barrier generation");
_Static_assert(offsetof(shmipc_barrier_state, outcomes) == 40, "barrier outcomes");

// MARK: queues

/// A queue's control block; the slots follow it. Lines written by different sides are a
/// cache-line pair apart (producers: tail; consumers: head; parking; read-mostly; joinable).
typedef struct shmipc_queue_state {
    uint64_t tail;              ///< next index to fill (MPMC: claimed by CAS; SPSC: producer's store)
    uint64_t produced;          ///< byte rings: messages published so far (a statistic, on the producer's own line)
    uint8_t pad0[SHMIPC_CACHE_PAIR - 16];
    uint64_t head;              ///< next index to take (MPMC: claimed by CAS; SPSC: consumer's store)
    uint64_t consumed;          ///< byte rings: messages taken so far (a statistic, on the consumer's own line)
    uint8_t pad1[SHMIPC_CACHE_PAIR - 16];
    uint32_t not_empty_epoch;   ///< futex consumers park on; bumped by a put that sees waiters
    uint32_t not_empty_waiters; ///< consumers registered to park
    uint32_t not_full_epoch;    ///< futex producers park on; bumped by a get that sees waiters
    uint32_t not_full_waiters;  ///< producers registered to park
    uint8_t pad2[SHMIPC_CACHE_PAIR - 16];
    uint64_t capacity;          ///< slots, a power of two (read-mostly from here on)
    uint64_t initial_index;     ///< where head and tail started (a testing hook moves it near 2^64)
    uint32_t closed;            ///< 1 once closed
    int32_t producer_pid;       ///< SPSC: pid holding the producer role, 0 if free
    int32_t consumer_pid;       ///< SPSC: pid holding the consumer role, 0 if free
    uint32_t slot_stride;       ///< bytes per slot
    uint32_t element_offset;    ///< where the element starts in a slot
    uint32_t intents_used;      ///< MPMC: entries of the intent table handed out so far (a high-water mark)
    uint64_t abandoned;         ///< MPMC: items lost with a producer or consumer that died holding them
    uint8_t pad3[SHMIPC_CACHE_PAIR - 48];
    uint32_t unfinished;        ///< JoinableQueue: futex; items put and not yet task_done
    uint32_t join_waiters;      ///< JoinableQueue: threads registered to park in join()
    uint8_t pad4[SHMIPC_CACHE_PAIR - 8];
} shmipc_queue_state;
_Static_assert(offsetof(shmipc_queue_state, head) == SHMIPC_CACHE_PAIR, "head a pair from tail");
_Static_assert(offsetof(shmipc_queue_state, not_empty_epoch) == 2 * SHMIPC_CACHE_PAIR, "parking line");
_Static_assert(offsetof(shmipc_queue_state, capacity) == 3 * SHMIPC_CACHE_PAIR, "read-mostly line");
_Static_assert(offsetof(shmipc_queue_state, unfinished) == 4 * SHMIPC_CACHE_PAIR, "joinable line");
_Static_assert(sizeof(shmipc_queue_state) == 5 * SHMIPC_CACHE_PAIR, "queue state");
_Static_assert(offsetof(shmipc_queue_state, abandoned) == 3 * SHMIPC_CACHE_PAIR + 40, "abandoned count");

/// The head of a MessageQueue slot (Vyukov's bounded queue); the length and payload follow.
/// A typed Queue's slot (layout 5) is the sequence alone, then the element at element_offset
/// (8 for elements aligned to 8 or less). In both, a sequence of (index + 1) ^ 2^63 marks the
/// slot of `index` given up (its producer died).
typedef struct shmipc_queue_slot {
    uint64_t sequence;          ///< index + 1 when full for that index; index + capacity when free
    uint64_t reserved;          ///< 0 (a slot given up is told by its sequence: (index + 1) ^ 2^63)
} shmipc_queue_slot;
_Static_assert(sizeof(shmipc_queue_slot) == 16, "slot head");

/// An entry of an MPMC queue's intent table (after the slots): what one thread is claiming or
/// holds. A thread stores the index it is about to claim (+ 1; 0 = none) here before the CAS on
/// the tail (head) that claims it, so a waiter that finds a claimed slot unpublished can tell a
/// live claimant (wait) from a dead one (repair). Only the owner writes its entry's intents;
/// each entry is a cache-line pair of its own (adjacent-line prefetch). Entry 0 is shared: leased for one operation at a time by a
/// thread that found every other entry held by a live thread.
typedef struct shmipc_queue_intent {
    uint32_t owner;             ///< thread id the entry belongs to; 0 if free
    uint32_t reserved;
    uint64_t producing;         ///< index + 1 this thread claims or holds as a producer; 0: none
    uint64_t consuming;         ///< index + 1 this thread claims or holds as a consumer; 0: none
    uint8_t pad[SHMIPC_CACHE_PAIR - 24];
} shmipc_queue_intent;
_Static_assert(sizeof(shmipc_queue_intent) == SHMIPC_CACHE_PAIR, "intent entry");
#define SHMIPC_QUEUE_INTENTS 128u

/// A thread's cache of its intent entries, by table address (direct-mapped): one compare and
/// one load of the thread's own entry on the fast path, with no look-up in shared memory.
typedef struct shmipc_intent_cache_line {
    const shmipc_queue_intent *table;
    uint32_t index;
} shmipc_intent_cache_line;
#define SHMIPC_INTENT_CACHE_BITS 4
#define SHMIPC_INTENT_CACHE_LINES (1u << SHMIPC_INTENT_CACHE_BITS)
extern __thread shmipc_intent_cache_line shmipc_intent_cache[SHMIPC_INTENT_CACHE_LINES]
    __attribute__((tls_model("initial-exec")));

static inline shmipc_intent_cache_line *shmipc_intent_cache_line_for(const shmipc_queue_intent *table) {
    // Tables of different queues sit at the same offset in their page-aligned mappings: hash
    // the whole address (Fibonacci hashing), not the low bits.
    return &shmipc_intent_cache[((uintptr_t)table * 0x9E3779B97F4A7C15ull) >> (64 - SHMIPC_INTENT_CACHE_BITS)];
}

/// The table this thread used last and its entry there: checked before the hashed cache (a
/// thread working one queue, the common case, skips the hash: MPMC put + get measured 195 → …
/// instructions).
extern __thread const shmipc_queue_intent *shmipc_intent_last_table __attribute__((tls_model("initial-exec")));
extern __thread shmipc_queue_intent *shmipc_intent_last_entry __attribute__((tls_model("initial-exec")));

/// This thread's entry in `table`, if the cache knows it and the entry is still this thread's
/// (a table mapped again at the same address, or a fork child, misses); NULL otherwise.
static inline shmipc_queue_intent *shmipc_intent_lookup(shmipc_queue_intent *table) {
    shmipc_queue_intent *entry;
    if (__builtin_expect(shmipc_intent_last_table == table, 1)) {
        entry = shmipc_intent_last_entry;
    } else {
        const shmipc_intent_cache_line *line = shmipc_intent_cache_line_for(table);
        if (__builtin_expect(line->table != table, 0)) return 0;
        entry = table + line->index;
        shmipc_intent_last_table = table;
        shmipc_intent_last_entry = entry;
    }
    uint32_t owner = __atomic_load_n(&entry->owner, __ATOMIC_RELAXED);
    int32_t me = shmipc_cached_thread_id;
    return __builtin_expect(me != 0 && owner == (uint32_t)me, 1) ? entry : 0;
}

/// Remembers this thread's entry `index` (< SHMIPC_QUEUE_INTENTS) of `table`.
static inline void shmipc_intent_remember(const shmipc_queue_intent *table, uint32_t index) {
    shmipc_intent_cache_line *line = shmipc_intent_cache_line_for(table);
    line->table = table;
    line->index = index < SHMIPC_QUEUE_INTENTS ? index : 0;
    shmipc_intent_last_table = table;
    shmipc_intent_last_entry = (shmipc_queue_intent *)table + line->index;
}

// MARK: byte messages

/// A record in a byte-message ring (Pipe/Connection): this 16-byte head, then `length` bytes,
/// the whole record padded to 64 (a cache line: a small record never shares its last line
/// with the next record's head). The ring reuses shmipc_queue_state as its control block (tail and head count
/// bytes; capacity is the ring's size in bytes). `commit` is written last, with release: it
/// equals the record's ring position + 1 once the record is whole, so a consumer polls one word
/// and stale heads from earlier laps never match (positions never repeat).
typedef struct shmipc_ring_record {
    uint64_t commit;            ///< ring position + 1 once published
    uint32_t length;            ///< payload bytes (0 for a wrap marker)
    uint32_t kind;              ///< SHMIPC_RECORD_MESSAGE or SHMIPC_RECORD_WRAP
} shmipc_ring_record;
_Static_assert(sizeof(shmipc_ring_record) == 16, "ring record head");
#define SHMIPC_RECORD_MESSAGE 1u
#define SHMIPC_RECORD_WRAP 2u   ///< the rest of the lap is padding; the next record starts at 0

// MessageQueue slots are shmipc_queue_slot heads, then the payload length (8 bytes), then the
// payload at offset 24.

// MARK: shared values and arrays

/// Value<T>: its lock, then, for types wider than one atomic word, two buffers each guarded by
/// a sequence counter, and the index of the one holding the value. Writers (serialized by the
/// lock) fill the other buffer, then flip `current`: a writer dying mid-write tears only a
/// buffer readers do not read. The buffers start at SHMIPC_CACHE_PAIR, one pair-aligned stride
/// apart; word-sized values live alone in the first.
typedef struct shmipc_value_state {
    shmipc_lock_state lock;
    uint32_t current;           ///< buffer holding the value (0 or 1)
    uint32_t reserved;
    uint64_t sequence[2];       ///< per buffer: odd while a writer fills it
    uint8_t pad[SHMIPC_CACHE_PAIR - 40];
} shmipc_value_state;
_Static_assert(sizeof(shmipc_value_state) == SHMIPC_CACHE_PAIR, "value state");
_Static_assert(offsetof(shmipc_value_state, current) == 16, "value current");
_Static_assert(offsetof(shmipc_value_state, sequence) == 24, "value sequences");

// MARK: managers (shared dictionary, list, Namespace)

/// Size classes of a store's heap free lists (SharedHeap): exact below 64 units, then eight
/// per power of two; heaps are at most 2^28 units.
#define SHMIPC_HEAP_CLASSES 256
/// The heap's allocation unit, in bytes; a block is whole units, its 8-byte head first.
#define SHMIPC_HEAP_UNIT 16

/// The control block of a heap-backed structure (SharedDictionary, SharedList, Namespace);
/// the heap follows it. Writers are serialized by `lock`; readers take no lock: they read
/// under `sequence` (odd while a writer changes the structure) and retry. Every change is
/// published by one aligned atomic store (a slot, an index word, or `root`); `count`,
/// `tombstones` and the free lists are derived state that the next writer after a dead one
/// rebuilds from the published structure.
typedef struct shmipc_store_state {
    shmipc_lock_state lock;     ///< writers (owner death detected as for Lock)
    uint64_t sequence;          ///< seqlock: odd while a writer changes the structure
    uint64_t root;              ///< the structure's root word (its commit point)
    uint64_t count;             ///< live entries (derived)
    uint64_t tombstones;        ///< removed-entry marks in a dictionary's index (derived)
    uint64_t used_units;        ///< allocated heap units (derived)
    uint64_t recoveries;        ///< repairs after a writer died mid-operation
    uint64_t heap_units;        ///< the heap's size in units (fixed at creation)
    uint64_t class_bitmap[SHMIPC_HEAP_CLASSES / 64]; ///< non-empty free lists
    uint8_t pad[SHMIPC_CACHE_PAIR - 104];
    uint32_t free_heads[SHMIPC_HEAP_CLASSES]; ///< first free block of each class (unit index, 0: none)
} shmipc_store_state;
_Static_assert(offsetof(shmipc_store_state, sequence) == 16, "store sequence");
_Static_assert(offsetof(shmipc_store_state, root) == 24, "store root");
_Static_assert(offsetof(shmipc_store_state, class_bitmap) == 72, "store bitmap");
_Static_assert(offsetof(shmipc_store_state, free_heads) == SHMIPC_CACHE_PAIR, "store free lists");
_Static_assert(sizeof(shmipc_store_state) == SHMIPC_CACHE_PAIR + 4 * SHMIPC_HEAP_CLASSES, "store state");
_Static_assert(sizeof(shmipc_store_state) % SHMIPC_HEAP_UNIT == 0, "heap starts on a unit");

/// A compiler-only barrier: no instruction, but no memory access moves across it.
static inline void shmipc_compiler_barrier(void) { __asm__ __volatile__("" ::: "memory"); }

/// membarrier(2), for the asymmetric Dekker of ParkingWord (queue and ring epochs): the rare
/// parking side issues the heavy barrier so the hot put/get path needs only a compiler barrier. Register once per
/// process (returns 0 when available), then call the barrier (0 or -1/errno).
/// (The kernel's named constants, never numbers: a wrong command registers for the *private*
/// barrier, the global one then interrupts nobody, and wake-ups are lost.)
static inline int shmipc_membarrier_register(void) {
    return (int)syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0);
}
static inline int shmipc_membarrier_global(void) {
    return (int)syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0);
}

/// Names the calling thread (15 characters at most), as tools show it; 0 or an error number.
int shmipc_set_thread_name(const char *name);

// MARK: io_uring — the async waiter's one ring per process (uring.c). Setup and enter are
// syscalls without libc wrappers, and the ring's layout comes from kernel headers.

typedef struct shmipc_uring shmipc_uring;
/// A ring of `entries` submissions and `cq_entries` completions; NULL with errno set.
shmipc_uring *shmipc_uring_create(unsigned entries, unsigned cq_entries);
void shmipc_uring_destroy(shmipc_uring *ring);
/// Queue one request (the caller serializes); 0, or -EBUSY with the submission queue full.
/// A futex wait completes with 0 when woken, -EAGAIN if the word did not hold `expected`,
/// -ECANCELED when cancelled, -EINVAL where the kernel lacks IORING_OP_FUTEX_WAIT.
int shmipc_uring_futex_wait(shmipc_uring *ring, uint32_t *word, uint32_t expected, uint64_t user_data);
/// POLLIN on `fd` (a pidfd turns readable when its process ends).
int shmipc_uring_poll(shmipc_uring *ring, int fd, uint64_t user_data);
/// Cancels the request whose user data is `target`.
int shmipc_uring_cancel(shmipc_uring *ring, uint64_t target, uint64_t user_data);
int shmipc_uring_nop(shmipc_uring *ring, uint64_t user_data);
/// Submits what was queued; the number submitted, or -errno.
int shmipc_uring_submit(shmipc_uring *ring);
/// Waits up to `timeout_ns` (negative: forever) for completions, then copies up to `max` of
/// them; the number copied (0 on timeout or a signal), or -errno. One thread only.
int shmipc_uring_wait(shmipc_uring *ring, int64_t timeout_ns, uint64_t *user_data, int32_t *results, int max);

#endif
