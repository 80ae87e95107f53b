/* quarantine.h — freed heap blocks wait here before glibc may reuse their memory, so that
 * a double free is recognised as one and a write through a stale pointer can be caught
 * when the block leaves. A FIFO bounded in bytes and entries, sharded by thread so that
 * threads freeing at once rarely meet; memory of its own from the runtime pool. The
 * quarantine only queues addresses: what leaving means (checks, the real free) is the
 * caller's business, done outside the quarantine's locks. */
#ifndef MEMTRACE_QUARANTINE_H
#define MEMTRACE_QUARANTINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pool.h"

#define QUARANTINE_EVICT_MAX 8

struct quarantined {
    uintptr_t addr;
    size_t size;
};

bool quarantine_init(struct pool *pool, size_t max_bytes);
/* Queues a freed block on shard `shard`. When that goes over the bound, the oldest
 * QUARANTINE_EVICT_MAX blocks (fewer if the shard holds fewer) are pushed out and copied to
 * evicted, so the shard may sit a few blocks under its bound. Returns their count. */
size_t quarantine_push(unsigned shard, uintptr_t addr, size_t size, struct quarantined *evicted);

void quarantine_lock_all(void);
void quarantine_unlock_all(void);
void quarantine_reset_locks(void);

#endif
