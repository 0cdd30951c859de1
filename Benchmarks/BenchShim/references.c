// The C references shm-bench measures ShmIPC against: the classic code each ShmIPC structure
// must approach, kept as small as the textbook versions so that a ratio measures our code and
// not a weak reference. Every loop that waits on the peer bounds its wait by a deadline in
// cycle-counter ticks (0: no deadline) and returns -1 when it passes, so a dead peer never
// hangs the benchmark.
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "BenchShim.h"

static inline void relax(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/// Checked every 64k spins: whether the deadline has passed.
static inline int expired(uint64_t deadline, uint32_t *spins) {
    if (((++*spins) & 0xFFFF) != 0 || deadline == 0) return 0;
    return shmipc_cycle_counter() > deadline;
}

#define LOAD_ACQ(p) atomic_load_explicit((_Atomic uint64_t *)(p), memory_order_acquire)
#define LOAD_RLX(p) atomic_load_explicit((_Atomic uint64_t *)(p), memory_order_relaxed)
#define STORE_REL(p, v) atomic_store_explicit((_Atomic uint64_t *)(p), (v), memory_order_release)

// MARK: SPSC ring

size_t shmipc_ref_spsc_size(uint64_t capacity, uint64_t item_size) {
    return sizeof(shmipc_ref_spsc) + capacity * item_size;
}

void shmipc_ref_spsc_init(shmipc_ref_spsc *ring, uint64_t capacity, uint64_t item_size) {
    memset(ring, 0, sizeof *ring);
    ring->capacity = capacity;
    ring->item_size = item_size;
}

/// The slot of `index`, from the geometry each side copied out of the ring once.
static inline uint8_t *slot(uint8_t *slots, uint64_t mask, uint64_t size, uint64_t index) {
    return slots + (index & mask) * size;
}

// The loops are specialised for each item size (a compile-time size, as a typed ring's
// element has): the copies become plain moves, not memcpy calls.
__attribute__((always_inline)) static inline int produce(shmipc_ref_spsc *ring, uint64_t count, uint64_t batch,
                                                         uint64_t deadline, const uint64_t size) {
    const uint64_t capacity = ring->capacity, mask = capacity - 1;
    uint8_t *const slots = (uint8_t *)(ring + 1);
    uint64_t tail = LOAD_RLX(&ring->tail);   // only this side writes it
    uint64_t head = LOAD_ACQ(&ring->head);   // cached; reloaded only when the ring looks full
    uint8_t small[256] = {0};
    uint8_t *item = size <= sizeof small ? small : calloc(1, size);  // larger items: one buffer per call
    if (!item) return -1;
    uint32_t spins = 0;
    if (batch == 0) batch = 1;
    for (uint64_t next = 0; next < count;) {
        uint64_t n = count - next < batch ? count - next : batch;
        while (tail + n - head > capacity) {
            head = LOAD_ACQ(&ring->head);  // pairs with the consumer's release store of head
            if (tail + n - head > capacity) {
                relax();
                if (expired(deadline, &spins)) {
                    if (item != small) free(item);
                    return -1;
                }
            }
        }
        for (uint64_t k = 0; k < n; k++) {
            uint64_t value = next + k;
            memcpy(item, &value, sizeof value);
            memcpy(slot(slots, mask, size, tail + k), item, size);
        }
        tail += n;
        next += n;
        STORE_REL(&ring->tail, tail);  // publishes the items; pairs with the consumer's acquire
    }
    if (item != small) free(item);
    return 0;
}

__attribute__((always_inline)) static inline int consume(shmipc_ref_spsc *ring, uint64_t count, uint64_t batch,
                                                         uint64_t deadline, uint64_t *checksum, const uint64_t size) {
    const uint64_t mask = ring->capacity - 1;
    uint8_t *const slots = (uint8_t *)(ring + 1);
    uint64_t head = LOAD_RLX(&ring->head);   // only this side writes it
    uint64_t tail = LOAD_ACQ(&ring->tail);   // cached; reloaded only when the ring looks empty
    uint64_t sum = 0;
    uint8_t small[256];
    uint8_t *item = size <= sizeof small ? small : malloc(size);
    if (!item) return -1;
    uint32_t spins = 0;
    if (batch == 0) batch = 1;
    for (uint64_t taken = 0; taken < count;) {
        while (tail == head) {
            tail = LOAD_ACQ(&ring->tail);  // pairs with the producer's release store of tail
            if (tail == head) {
                relax();
                if (expired(deadline, &spins)) {
                    if (item != small) free(item);
                    return -1;
                }
            }
        }
        uint64_t available = tail - head;
        uint64_t n = available < batch ? available : batch;
        if (n > count - taken) n = count - taken;
        for (uint64_t k = 0; k < n; k++) {
            memcpy(item, slot(slots, mask, size, head + k), size);  // the whole item, as a typed get copies it
            uint64_t value;
            memcpy(&value, item, sizeof value);
            sum += value;
        }
        head += n;
        taken += n;
        STORE_REL(&ring->head, head);  // frees the slots; pairs with the producer's acquire
    }
    *checksum = sum;
    if (item != small) free(item);
    return 0;
}

int shmipc_ref_spsc_produce(shmipc_ref_spsc *ring, uint64_t count, uint64_t batch, uint64_t deadline) {
    switch (ring->item_size) {
    case 8: return produce(ring, count, batch, deadline, 8);
    case 64: return produce(ring, count, batch, deadline, 64);
    default: return produce(ring, count, batch, deadline, ring->item_size);
    }
}

int shmipc_ref_spsc_consume(shmipc_ref_spsc *ring, uint64_t count, uint64_t batch, uint64_t deadline, uint64_t *checksum) {
    switch (ring->item_size) {
    case 8: return consume(ring, count, batch, deadline, checksum, 8);
    case 64: return consume(ring, count, batch, deadline, checksum, 64);
    default: return consume(ring, count, batch, deadline, checksum, ring->item_size);
    }
}

// MARK: MPMC ring (Dmitry Vyukov's bounded MPMC queue)

size_t shmipc_ref_mpmc_size(uint64_t capacity) {
    return sizeof(shmipc_ref_mpmc) + capacity * sizeof(shmipc_ref_mpmc_cell);
}

void shmipc_ref_mpmc_init(shmipc_ref_mpmc *queue, uint64_t capacity) {
    memset(queue, 0, sizeof *queue);
    queue->mask = capacity - 1;
    shmipc_ref_mpmc_cell *cells = (shmipc_ref_mpmc_cell *)(queue + 1);
    for (uint64_t i = 0; i < capacity; i++) {
        cells[i].sequence = i;
        cells[i].value = 0;
    }
}

int shmipc_ref_mpmc_put(shmipc_ref_mpmc *queue, uint64_t value, uint64_t deadline) {
    shmipc_ref_mpmc_cell *cells = (shmipc_ref_mpmc_cell *)(queue + 1);
    _Atomic uint64_t *enqueue = (_Atomic uint64_t *)&queue->enqueue_position;
    uint64_t position = atomic_load_explicit(enqueue, memory_order_relaxed);
    uint32_t spins = 0;
    for (;;) {
        shmipc_ref_mpmc_cell *cell = &cells[position & queue->mask];
        uint64_t sequence = LOAD_ACQ(&cell->sequence);  // pairs with the consumer's release
        int64_t difference = (int64_t)(sequence - position);
        if (difference == 0) {
            if (atomic_compare_exchange_weak_explicit(enqueue, &position, position + 1, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                cell->value = value;
                STORE_REL(&cell->sequence, position + 1);  // publishes the value
                return 0;
            }
        } else if (difference < 0) {  // full
            relax();
            if (expired(deadline, &spins)) return -1;
            position = atomic_load_explicit(enqueue, memory_order_relaxed);
        } else {
            position = atomic_load_explicit(enqueue, memory_order_relaxed);
        }
    }
}

int shmipc_ref_mpmc_get(shmipc_ref_mpmc *queue, uint64_t *value, uint64_t deadline) {
    shmipc_ref_mpmc_cell *cells = (shmipc_ref_mpmc_cell *)(queue + 1);
    _Atomic uint64_t *dequeue = (_Atomic uint64_t *)&queue->dequeue_position;
    uint64_t position = atomic_load_explicit(dequeue, memory_order_relaxed);
    uint32_t spins = 0;
    for (;;) {
        shmipc_ref_mpmc_cell *cell = &cells[position & queue->mask];
        uint64_t sequence = LOAD_ACQ(&cell->sequence);  // pairs with the producer's release
        int64_t difference = (int64_t)(sequence - (position + 1));
        if (difference == 0) {
            if (atomic_compare_exchange_weak_explicit(dequeue, &position, position + 1, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                *value = cell->value;
                STORE_REL(&cell->sequence, position + queue->mask + 1);  // frees the cell
                return 0;
            }
        } else if (difference < 0) {  // empty
            relax();
            if (expired(deadline, &spins)) return -1;
            position = atomic_load_explicit(dequeue, memory_order_relaxed);
        } else {
            position = atomic_load_explicit(dequeue, memory_order_relaxed);
        }
    }
}

int shmipc_ref_mpmc_produce(shmipc_ref_mpmc *queue, uint64_t count, uint64_t deadline) {
    for (uint64_t i = 0; i < count; i++) {
        if (shmipc_ref_mpmc_put(queue, i, deadline) != 0) return -1;
    }
    return 0;
}

int shmipc_ref_mpmc_consume(shmipc_ref_mpmc *queue, uint64_t count, uint64_t deadline, uint64_t *checksum) {
    uint64_t sum = 0, value = 0;
    for (uint64_t i = 0; i < count; i++) {
        if (shmipc_ref_mpmc_get(queue, &value, deadline) != 0) return -1;
        sum += value;
    }
    *checksum = sum;
    return 0;
}

// MARK: a ping-pong over two classic SPSC rings (8-byte items)

/// Puts `value` into `ring` (8-byte items), waiting while it is full.
static inline int ring_put(shmipc_ref_spsc *ring, uint64_t *tail, uint64_t *head, uint64_t value, uint64_t deadline,
                           uint32_t *spins) {
    const uint64_t capacity = ring->capacity;
    if (*tail - *head >= capacity) {
        while ((*head = LOAD_ACQ(&ring->head)), *tail - *head >= capacity) {  // pairs with the consumer's release
            relax();
            if (expired(deadline, spins)) return -1;
        }
    }
    ((uint64_t *)(ring + 1))[*tail & (capacity - 1)] = value;
    *tail += 1;
    STORE_REL(&ring->tail, *tail);  // publishes the item
    return 0;
}

/// Takes the next item of `ring` into `value`, waiting while it is empty.
static inline int ring_get(shmipc_ref_spsc *ring, uint64_t *head, uint64_t *tail, uint64_t *value, uint64_t deadline,
                           uint32_t *spins) {
    if (*head == *tail) {
        while ((*tail = LOAD_ACQ(&ring->tail)) == *head) {  // pairs with the producer's release
            relax();
            if (expired(deadline, spins)) return -1;
        }
    }
    *value = ((uint64_t *)(ring + 1))[*head & (ring->capacity - 1)];
    *head += 1;
    STORE_REL(&ring->head, *head);  // frees the slot
    return 0;
}

int shmipc_ref_spsc_ping(shmipc_ref_spsc *there, shmipc_ref_spsc *back, uint64_t warmup, uint64_t count, uint64_t *cycles,
                         uint64_t deadline) {
    uint32_t spins = 0;
    uint64_t tail = LOAD_RLX(&there->tail), cached_head = LOAD_ACQ(&there->head);
    uint64_t head = LOAD_RLX(&back->head), cached_tail = LOAD_ACQ(&back->tail);
    uint64_t previous = 0, value = 0;
    for (uint64_t i = 0; i < warmup + count; i++) {
        if (i == warmup) previous = shmipc_cycle_counter();
        if (ring_put(there, &tail, &cached_head, i, deadline, &spins) != 0) return -1;
        if (ring_get(back, &head, &cached_tail, &value, deadline, &spins) != 0) return -1;
        if (value != i + 1) return -2;
        if (i >= warmup) {
            uint64_t now = shmipc_cycle_counter();
            cycles[i - warmup] = now - previous;
            previous = now;
        }
    }
    return 0;
}

int shmipc_ref_spsc_pong(shmipc_ref_spsc *there, shmipc_ref_spsc *back, uint64_t total, uint64_t deadline) {
    uint32_t spins = 0;
    uint64_t head = LOAD_RLX(&there->head), cached_tail = LOAD_ACQ(&there->tail);
    uint64_t tail = LOAD_RLX(&back->tail), cached_head = LOAD_ACQ(&back->head);
    for (uint64_t i = 0; i < total; i++) {
        uint64_t value;
        if (ring_get(there, &head, &cached_tail, &value, deadline, &spins) != 0) return -1;
        if (ring_put(back, &tail, &cached_head, value + 1, deadline, &spins) != 0) return -1;
    }
    return 0;
}

// MARK: the spin floor and the shared counter

int shmipc_ref_spin_ping(uint64_t *line, uint64_t warmup, uint64_t count, uint64_t *cycles, uint64_t deadline) {
    uint32_t spins = 0;
    uint64_t previous = 0;
    for (uint64_t i = 0; i < warmup + count; i++) {
        if (i == warmup) previous = shmipc_cycle_counter();
        uint64_t odd = 2 * i + 1;
        STORE_REL(line, odd);  // pairs with the pong side's acquire
        while (LOAD_ACQ(line) != odd + 1) {
            relax();
            if (expired(deadline, &spins)) return -1;
        }
        if (i >= warmup) {
            uint64_t now = shmipc_cycle_counter();
            cycles[i - warmup] = now - previous;
            previous = now;
        }
    }
    return 0;
}

int shmipc_ref_spin_pong(uint64_t *line, uint64_t total, uint64_t deadline) {
    uint32_t spins = 0;
    for (uint64_t i = 0; i < total; i++) {
        uint64_t odd = 2 * i + 1;
        while (LOAD_ACQ(line) != odd) {  // pairs with the ping side's release store
            relax();
            if (expired(deadline, &spins)) return -1;
        }
        STORE_REL(line, odd + 1);
    }
    return 0;
}

void shmipc_ref_add(uint64_t *counter, uint64_t count) {
    for (uint64_t i = 0; i < count; i++) {
        atomic_fetch_add_explicit((_Atomic uint64_t *)counter, 1, memory_order_relaxed);
    }
}
