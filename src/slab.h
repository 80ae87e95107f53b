/* slab.h — the memory under small redzoned blocks (a block and its two redzones in at
 * most SLAB_MAX_SLOT bytes): slots of one size per size class, in 16-byte steps, each
 * class carved from a region of its own in one reservation, made writable as it is used.
 * A freed slot goes to the freeing thread's cache for its class, without a lock; a full
 * cache hands a batch to its class's central stack of batches, an empty one takes one
 * back (under the class's lock), so that a thread freeing what another allocates does
 * not hoard slots. glibc's malloc, used for these blocks before, coalesces and sorts the
 * blocks the quarantine hands back long after they were freed: that cost python3 more
 * than all of memtrace's own bookkeeping (docs/performance.md).
 * The reservation is memtrace's: never a leak scan root, and munmap refuses it. Slots are
 * never given back to the system, as valgrind never gives back its heap. */
#ifndef MEMTRACE_SLAB_H
#define MEMTRACE_SLAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SLAB_MIN_SLOT 32
#define SLAB_MAX_SLOT 1024
#define SLAB_SLOT_STEP 16

/* Where the reservation lies; lo == hi while there is none. Set once, by slab_init. */
extern struct slab_range {
    uintptr_t lo, hi;
} slab_range;

/* Reserves the address space; false (and every block from glibc) when it cannot. */
bool slab_init(void);
/* A slot of slot_size bytes (a multiple of SLAB_SLOT_STEP from SLAB_MIN_SLOT to
 * SLAB_MAX_SLOT), 16-aligned, holding whatever it held before; NULL when its class's
 * region is full. */
void *slab_alloc(size_t slot_size);
/* Gives back the slot that starts at slot. Not from a signal handler that interrupted
 * slab_alloc or slab_free on the same thread (the cache has no lock). */
void slab_free(void *slot);

static inline bool slab_owns(uintptr_t addr)
{
    return addr - slab_range.lo < slab_range.hi - slab_range.lo;
}

/* The size of the slot addr lies in (addr in the reservation): its class's, found from
 * the address alone. */
size_t slab_slot_size(uintptr_t addr);
/* Whether [lo, hi) reaches into the reservation. */
bool slab_overlaps(uintptr_t lo, uintptr_t hi);

/* As a thread ends: its cached slots go to the central stacks, and its later frees (other
 * destructors') go there directly. */
void slab_thread_exit(void);

void slab_lock_all(void);
void slab_unlock_all(void);
void slab_reset_locks(void);

#endif
