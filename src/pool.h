/* pool.h — memtrace's own memory: a buddy allocator (power-of-two orders, split on
 * allocation, merge with the free buddy on release) over arenas mapped with mmap.
 * Owns every byte of runtime bookkeeping (block table, stack table, scan arrays), so
 * that nothing of memtrace lives in the libc heap it watches. Never calls malloc, stdio
 * or anything that may allocate; safe to call before constructors ran.
 * Thread-safe: one lock per pool; pool_fork_prepare/parent/child make fork() safe. */
#ifndef MEMTRACE_POOL_H
#define MEMTRACE_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "os.h"

#define POOL_MIN_ORDER 5          /* 32-byte smallest block */
#define POOL_MAX_ARENAS 64

struct pool_free_block;

struct pool_arena {
    uintptr_t base;               /* aligned to its size */
    unsigned order;               /* arena size is 1 << order */
    uint8_t *block_order;         /* per 32-byte unit, mmap'd: 0 inside a block; at a block start
                                   * its order, with 0x80 set while the block is free */
};

struct pool {
    /* internal: lock, free lists per order, arenas, totals; see pool.c */
    struct spinlock lock;
    unsigned arena_order;         /* order of a regular arena (e.g. 26 = 64 MiB) */
    size_t limit;                 /* most bytes of arenas ever mapped; 0 = no limit */
    size_t mapped;                /* bytes of arenas mapped so far */
    size_t in_use;                /* bytes handed out (rounded sizes) */
    unsigned narenas;             /* release-stored once an arena is set up; read lock-free */
    struct pool_arena arenas[POOL_MAX_ARENAS];
    struct pool_free_block *free_lists[64];   /* per order, doubly linked through free blocks */
};

/* Prepares an empty pool; maps nothing yet. */
void pool_init(struct pool *pool, unsigned arena_order, size_t limit);
/* A block of at least `size` bytes, aligned to its rounded size (min 32, a power of two),
 * zero-filled. Requests larger than a regular arena get an arena of their own.
 * NULL when the limit or mmap says no; never aborts. */
void *pool_alloc(struct pool *pool, size_t size);
/* Returns a block; merges it with its free buddy as far as it goes. NULL is ignored. */
void pool_free(struct pool *pool, void *ptr);
/* The rounded size of a live block, or 0 when ptr is not a live block start of this pool. */
size_t pool_block_size(struct pool *pool, const void *ptr);
/* True when addr lies inside any arena of this pool. Lock-free read; safe in a signal handler. */
bool pool_owns(const struct pool *pool, const void *addr);
/* Calls fn for every arena's mapped range (leak scan excludes them; munmap checks them). */
void pool_for_each_arena(const struct pool *pool,
                         void (*fn)(uintptr_t start, size_t len, void *ctx), void *ctx);

void pool_fork_prepare(struct pool *pool);
void pool_fork_parent(struct pool *pool);
void pool_fork_child(struct pool *pool);

#endif
