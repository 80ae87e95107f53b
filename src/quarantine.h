/* quarantine.h — freed heap blocks wait here before glibc may reuse their memory, so that
 * a double free is recognised as one and a write through a stale pointer can be caught
 * when the block leaves. A FIFO bounded in entries and in the memory its blocks hold
 * (with their redzones and glibc's chunk headers, twice the block sizes in a program of
 * small blocks: what the bound promises is memory), sharded by thread so that
 * threads freeing at once rarely meet; memory of its own from the runtime pool.
 * A freed block leaves the block table and lives here, record and all: the block table
 * only holds live blocks, and a block leaving the quarantine costs no table lookup.
 * What leaving means (checks, the real free) is the caller's business, done outside the
 * quarantine's locks. */
#ifndef MEMTRACE_QUARANTINE_H
#define MEMTRACE_QUARANTINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blocks.h"
#include "pool.h"

#define QUARANTINE_EVICT_MAX 8
/* A waiting block's tag fills the last bytes of its redzone, just before the block: the
 * block's address and where it waits, so that a second free finds it without a lookup. */
#define QUARANTINE_TAG_SIZE 16

/* Where a block waits: its shard and its running position there. */
struct quarantine_place {
    uint32_t shard;
    uint64_t position;
};

struct quarantine_evicted {
    struct block block;
    struct quarantine_place place;
};

/* Makes every shard empty. max_bytes bounds the memory held, as quarantine_held_bytes
 * counts it, an eighth of it on each shard. */
bool quarantine_init(struct pool *pool, size_t max_bytes);
/* Bounds the memory held by all shards together by the program's live heap: a program of
 * a few MB with 8 threads would otherwise keep 32 MB of freed blocks, several times its
 * own memory. An eighth of max_bytes is always allowed (one thread's shard never holds
 * less than before), max_bytes never exceeded; shards used so far split the bound. */
void quarantine_fit_to_heap(size_t live_bytes);
/* The memory a waiting block keeps from reuse: its chunk, redzones and header included. */
size_t quarantine_held_bytes(const struct block *block);
/* Queues a freed block (its record, state BLOCK_FREED) on shard `shard` and writes its
 * tag, under the shard's lock (another thread may push it out right after). When that
 * goes over the bound, the oldest QUARANTINE_EVICT_MAX blocks (fewer if the shard holds
 * fewer) are pushed out and copied to evicted, so the shard may sit a few blocks under
 * its bound. Returns their count. The block needs a redzone of QUARANTINE_TAG_SIZE. */
size_t quarantine_push(unsigned shard, const struct block *block, struct quarantine_evicted *evicted);
/* The waiting block that starts at addr. Reads the tag before addr without trusting addr
 * (a wild pointer gets false, not a fault): for frees the block table does not know. */
bool quarantine_find(uintptr_t addr, struct block *out);
/* The overwritten tag byte nearest the block, or 0 when the tag is intact. */
uintptr_t quarantine_tag_damage(const struct block *block, struct quarantine_place place);
/* Every waiting block; takes no lock: only while the world is stopped. */
void quarantine_for_each(void (*fn)(const struct block *block, struct quarantine_place place, void *ctx),
                         void *ctx);

void quarantine_lock_all(void);
void quarantine_unlock_all(void);
void quarantine_reset_locks(void);

#endif
