/* blocks.h — the block table: every live heap block the program owns, keyed by the
 * address handed to the program, with its size, allocator family, thread and allocation
 * stack. Sharded open-addressing hash tables (linear probing, backward-shift deletion) in
 * the runtime pool; one spinlock per shard, so threads rarely meet.
 * blocks_for_each reads without locks: only call it while the world is stopped. */
#ifndef MEMTRACE_BLOCKS_H
#define MEMTRACE_BLOCKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pool.h"

enum alloc_kind {
    ALLOC_MALLOC,    /* malloc, calloc, realloc, memalign family: freed by free */
    ALLOC_NEW,       /* operator new: freed by delete */
    ALLOC_NEW_ARRAY, /* operator new[]: freed by delete[] */
    ALLOC_KIND_COUNT
};

struct block {
    uintptr_t addr;        /* 0 marks an empty slot */
    size_t size;           /* as requested */
    uint32_t alloc_stack;
    uint32_t tid;
    uint8_t kind;          /* enum alloc_kind */
    uint8_t untracked;     /* allocated inside memtrace itself (e.g. by dlopen): no stack */
};

bool blocks_init(struct pool *pool);
/* False only when the pool is exhausted; the block then goes unrecorded. */
bool blocks_insert(const struct block *block);
/* Removes the block that starts at addr into *out; false when there is none. */
bool blocks_remove(uintptr_t addr, struct block *out);
bool blocks_find(uintptr_t addr, struct block *out);
void blocks_for_each(void (*fn)(const struct block *block, void *ctx), void *ctx);
size_t blocks_live_count(void);

/* Holds every shard lock: for fork and for stopping the world. */
void blocks_lock_all(void);
void blocks_unlock_all(void);
void blocks_reset_locks(void);

#endif
