// A minimal io_uring for ShmIPC's async waiter: futex waits (IORING_OP_FUTEX_WAIT, Linux 6.7),
// polls (pidfds), cancels and no-ops, without liburing (not in the package mirror). One ring
// per process; the Swift side serializes submissions with a lock, and one thread reaps.
// Field use follows liburing's io_uring_prep_futex_wait: fd = futex2 flags, addr = the word,
// off = the expected value, addr3 = the bitset mask, futex_flags (rw_flags) = 0.
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/io_uring.h>
#include <linux/time_types.h>
#include <poll.h>
#include "CShim.h"

// Opcodes newer than some installed headers (include/uapi/linux/io_uring.h, Linux 6.7).
#define SHMIPC_IORING_OP_FUTEX_WAIT 51
#define SHMIPC_FUTEX2_SIZE_U32 0x02
#define SHMIPC_FUTEX_BITSET_MATCH_ANY 0xffffffffu

struct shmipc_uring {
    int fd;
    unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
    unsigned sq_entries;
    unsigned local_tail;  ///< SQEs prepared; published to *sq_tail by submit
    struct io_uring_sqe *sqes;
    unsigned *cq_head, *cq_tail, *cq_mask;
    struct io_uring_cqe *cqes;
    void *sq_ring, *cq_ring;
    size_t sq_ring_size, cq_ring_size, sqes_size;
};

shmipc_uring *shmipc_uring_create(unsigned entries, unsigned cq_entries) {
    struct io_uring_params params;
    memset(&params, 0, sizeof(params));
    params.flags = IORING_SETUP_CQSIZE;
    params.cq_entries = cq_entries;
    int fd = (int)syscall(__NR_io_uring_setup, entries, &params);  // close-on-exec by default
    if (fd < 0) return NULL;
    shmipc_uring *ring = calloc(1, sizeof(*ring));
    if (ring == NULL) { close(fd); errno = ENOMEM; return NULL; }
    ring->fd = fd;
    ring->sq_ring_size = params.sq_off.array + params.sq_entries * sizeof(unsigned);
    ring->cq_ring_size = params.cq_off.cqes + params.cq_entries * sizeof(struct io_uring_cqe);
    int single = (params.features & IORING_FEAT_SINGLE_MMAP) != 0;
    if (single && ring->cq_ring_size > ring->sq_ring_size) ring->sq_ring_size = ring->cq_ring_size;
    ring->sq_ring = mmap(NULL, ring->sq_ring_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
    if (ring->sq_ring == MAP_FAILED) goto fail;
    if (single) {
        ring->cq_ring = ring->sq_ring;
    } else {
        ring->cq_ring = mmap(NULL, ring->cq_ring_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
        if (ring->cq_ring == MAP_FAILED) { ring->cq_ring = NULL; goto fail; }
    }
    ring->sqes_size = params.sq_entries * sizeof(struct io_uring_sqe);
    ring->sqes = mmap(NULL, ring->sqes_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
    if (ring->sqes == MAP_FAILED) { ring->sqes = NULL; goto fail; }
    char *sq = ring->sq_ring, *cq = ring->cq_ring;
    ring->sq_head = (unsigned *)(sq + params.sq_off.head);
    ring->sq_tail = (unsigned *)(sq + params.sq_off.tail);
    ring->sq_mask = (unsigned *)(sq + params.sq_off.ring_mask);
    ring->sq_array = (unsigned *)(sq + params.sq_off.array);
    ring->sq_entries = params.sq_entries;
    ring->local_tail = *ring->sq_tail;
    ring->cq_head = (unsigned *)(cq + params.cq_off.head);
    ring->cq_tail = (unsigned *)(cq + params.cq_off.tail);
    ring->cq_mask = (unsigned *)(cq + params.cq_off.ring_mask);
    ring->cqes = (struct io_uring_cqe *)(cq + params.cq_off.cqes);
    return ring;
fail:;
    int saved = errno;
    shmipc_uring_destroy(ring);
    errno = saved;
    return NULL;
}

void shmipc_uring_destroy(shmipc_uring *ring) {
    if (ring == NULL) return;
    if (ring->sqes != NULL) munmap(ring->sqes, ring->sqes_size);
    if (ring->cq_ring != NULL && ring->cq_ring != ring->sq_ring) munmap(ring->cq_ring, ring->cq_ring_size);
    if (ring->sq_ring != NULL && ring->sq_ring != MAP_FAILED) munmap(ring->sq_ring, ring->sq_ring_size);
    close(ring->fd);
    free(ring);
}

/// The next free SQE, zeroed; NULL if the submission queue is full (submit first).
static struct io_uring_sqe *next_sqe(shmipc_uring *ring) {
    unsigned head = __atomic_load_n(ring->sq_head, __ATOMIC_ACQUIRE);  // pairs with the kernel's release
    if (ring->local_tail - head >= ring->sq_entries) return NULL;
    unsigned index = ring->local_tail & *ring->sq_mask;
    struct io_uring_sqe *sqe = &ring->sqes[index];
    memset(sqe, 0, sizeof(*sqe));
    ring->sq_array[index] = index;
    ring->local_tail++;
    return sqe;
}

int shmipc_uring_futex_wait(shmipc_uring *ring, uint32_t *word, uint32_t expected, uint64_t user_data) {
    struct io_uring_sqe *sqe = next_sqe(ring);
    if (sqe == NULL) return -EBUSY;
    sqe->opcode = SHMIPC_IORING_OP_FUTEX_WAIT;
    sqe->fd = SHMIPC_FUTEX2_SIZE_U32;  // shared: no FUTEX2_PRIVATE (the word is in shared memory)
    sqe->addr = (uint64_t)(uintptr_t)word;
    sqe->off = expected;
    sqe->addr3 = SHMIPC_FUTEX_BITSET_MATCH_ANY;
    sqe->user_data = user_data;
    return 0;
}

int shmipc_uring_poll(shmipc_uring *ring, int fd, uint64_t user_data) {
    struct io_uring_sqe *sqe = next_sqe(ring);
    if (sqe == NULL) return -EBUSY;
    sqe->opcode = IORING_OP_POLL_ADD;
    sqe->fd = fd;
    sqe->poll32_events = POLLIN;
    sqe->user_data = user_data;
    return 0;
}

int shmipc_uring_cancel(shmipc_uring *ring, uint64_t target, uint64_t user_data) {
    struct io_uring_sqe *sqe = next_sqe(ring);
    if (sqe == NULL) return -EBUSY;
    sqe->opcode = IORING_OP_ASYNC_CANCEL;
    sqe->fd = -1;
    sqe->addr = target;
    sqe->user_data = user_data;
    return 0;
}

int shmipc_uring_nop(shmipc_uring *ring, uint64_t user_data) {
    struct io_uring_sqe *sqe = next_sqe(ring);
    if (sqe == NULL) return -EBUSY;
    sqe->opcode = IORING_OP_NOP;
    sqe->fd = -1;
    sqe->user_data = user_data;
    return 0;
}

int shmipc_uring_submit(shmipc_uring *ring) {
    unsigned tail = ring->local_tail;
    unsigned pending = tail - *ring->sq_tail;
    if (pending == 0) return 0;
    __atomic_store_n(ring->sq_tail, tail, __ATOMIC_RELEASE);  // the SQEs before the tail
    for (;;) {
        long submitted = syscall(__NR_io_uring_enter, ring->fd, pending, 0, 0, NULL, 0);
        if (submitted >= 0) return (int)submitted;
        if (errno != EINTR) return -errno;
    }
}

int shmipc_uring_wait(shmipc_uring *ring, int64_t timeout_ns, uint64_t *user_data, int32_t *results, int max) {
    for (int attempt = 0; attempt < 2; attempt++) {
        unsigned head = *ring->cq_head;  // only this thread moves it
        unsigned tail = __atomic_load_n(ring->cq_tail, __ATOMIC_ACQUIRE);  // pairs with the kernel's release
        int count = 0;
        while (head != tail && count < max) {
            struct io_uring_cqe *cqe = &ring->cqes[head & *ring->cq_mask];
            user_data[count] = cqe->user_data;
            results[count] = cqe->res;
            count++;
            head++;
        }
        if (count > 0) {
            __atomic_store_n(ring->cq_head, head, __ATOMIC_RELEASE);  // the entries are read
            return count;
        }
        if (attempt == 1) return 0;
        struct __kernel_timespec timeout = {
            .tv_sec = timeout_ns < 0 ? 0 : timeout_ns / 1000000000, .tv_nsec = timeout_ns < 0 ? 0 : timeout_ns % 1000000000};
        struct io_uring_getevents_arg arg;
        memset(&arg, 0, sizeof(arg));
        arg.ts = timeout_ns < 0 ? 0 : (uint64_t)(uintptr_t)&timeout;
        long entered = syscall(__NR_io_uring_enter, ring->fd, 0, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof(arg));
        if (entered < 0 && errno != ETIME && errno != EINTR) return -errno;
    }
    return 0;
}
