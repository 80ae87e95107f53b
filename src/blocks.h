/* blocks.h — the block table: every live heap block the program owns, keyed by the
 * address handed to the program, with its size, allocator family, thread and allocation
 * stack. Most blocks (glibc's, with the smallest head redzone) are filed by a header word
 * in the first 8 bytes of that redzone and a bit in a bitmap of block starts; guarded
 * ones by their slot of the guarded pool, in an array of 16-byte entries; the rest
 * (over-aligned, mmapped by glibc) by the page they start in, in a small open-addressing
 * table per page (16-byte entries, linear probing, backward-shift deletion). A page map
 * indexed by address (root and 1 GiB leaves) leads to the bitmap and the page tables, all
 * in the runtime pool. A change runs under the calling thread's shard lock (64 shards,
 * taken by threads in turn); bitmap bits change atomically, and a page's table or a slot's
 * entry under its 1 MiB region's lock besides, so threads freeing each other's blocks
 * rarely meet.
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

/* The last 8 bytes before a scalar operator new block (its head redzone, or a guarded
 * block's slack) read as zero. delete[] of such a block reads its element count there (the
 * C++ ABI's array cookie, kept for types with destructors): zero runs no destructor and
 * frees 8 bytes before the block, an invalid free memtrace reports, where the canary made
 * it run destructors off into memory until the program crashed. */
#define ARRAY_COOKIE_SIZE 8

enum block_state { BLOCK_LIVE, BLOCK_FREED };

struct block {
    uintptr_t addr;        /* 0 marks an empty slot */
    size_t size;           /* as requested */
    uint32_t alloc_stack;
    uint32_t free_stack;   /* while BLOCK_FREED (in the quarantine, not in this table) */
    uint32_t tid;
    uint8_t kind;          /* enum alloc_kind */
    uint8_t state;         /* enum block_state */
    uint8_t head_shift;    /* redzone before the block: 1 << head_shift bytes, 0 = none */
    uint8_t flags;         /* BLOCK_GUARDED, BLOCK_HEADER_DAMAGED */
    uint16_t word_hashes[8]; /* while BLOCK_FREED: of its first words as the free left them */
};

/* Lives in the guarded pool (src/guard.c), not in glibc's heap. */
#define BLOCK_GUARDED 2
/* Its header word was overwritten (an underflow past the head canary): only its address
 * is known, size 0 and no stack. */
#define BLOCK_HEADER_DAMAGED 4

/* The redzone on each side of an unguarded block (the head one grows to the alignment:
 * head_shift). The head one's first 8 bytes are the block table's header word; the canary
 * is the rest. It also keeps glibc's own pointers to chunk headers (a chunk header
 * overlaps the last word of the chunk before it) outside every block, where they would
 * look like interior pointers to the leak scan. */
#define BLOCK_REDZONE 16
#define BLOCK_REDZONE_SHIFT 4
#define BLOCK_HEADER_SIZE 8


bool blocks_init(struct pool *pool);
/* Files the blocks inside [first, first + stride * count) by slot, one at most in each
 * stride-long slot (the guarded pool's), instead of by page: called once, before any
 * block is inserted there. False when the pool is exhausted (they go by page then). */
bool blocks_file_by_slot(uintptr_t first, size_t stride, size_t count);
/* False only when the pool is exhausted: the block is not recorded (heap.c then gives
 * the program no block). */
bool blocks_insert(const struct block *block);
bool blocks_find(uintptr_t addr, struct block *out);
/* Starts loading addr's bitmap word and page map entry into the cache, so that a lookup or
 * an insert a little later waits less for memory (the header word lies beside the block:
 * the caller prefetches that). Takes no lock and makes no leaf. */
void blocks_prefetch(uintptr_t addr);
/* free(): removes the block at addr into *out, counted as released (it goes on to the
 * quarantine, src/quarantine.h); false when the table has no block there. */
bool blocks_release(uintptr_t addr, struct block *out);
/* For describing a bad address: the live block addr lies in or in the redzones of, when it
 * was filed by its header (blocks up to BLOCK_NEAR_REACH bytes, with the smallest head
 * redzone, which most are); its start when addr is in two blocks' redzones. No lock:
 * a block freed meanwhile may be described. */
#define BLOCK_NEAR_REACH (1u << 20)
bool blocks_find_near(uintptr_t addr, struct block *out);
void blocks_for_each(void (*fn)(const struct block *block, void *ctx), void *ctx);
size_t blocks_live_count(void);
/* The bytes the program asked for in blocks not yet freed; read without a lock, so only
 * near the truth while other threads allocate. */
size_t blocks_live_bytes(void);
/* Blocks ever inserted, ever released (freed), and the bytes inserted. */
void blocks_totals(uint64_t *allocs, uint64_t *frees, uint64_t *bytes);

/* Holds every shard lock: for fork and for stopping the world. */
void blocks_lock_all(void);
void blocks_unlock_all(void);
void blocks_reset_locks(void);

#endif
