/* quarantine.c — the sharded FIFO of freed blocks (see quarantine.h). */
#include "quarantine.h"

#include "os.h"

#define SHARDS 8
#define SHARD_ENTRIES (1u << 16)     /* a power of two: ring indices wrap by mask */

struct shard {
    struct spinlock lock;
    struct quarantined *ring;
    size_t head, count, bytes;
} __attribute__((aligned(64)));

static struct shard shards[SHARDS];
static size_t shard_budget;

bool quarantine_init(struct pool *pool, size_t max_bytes)
{
    shard_budget = max_bytes / SHARDS;
    for (int i = 0; i < SHARDS; i++) {
        shards[i].ring = pool_alloc(pool, SHARD_ENTRIES * sizeof(struct quarantined));
        if (!shards[i].ring)
            return false;
    }
    return true;
}

size_t quarantine_push(unsigned shard_index, uintptr_t addr, size_t size, struct quarantined *evicted)
{
    struct shard *s = &shards[shard_index % SHARDS];
    size_t n = 0;

    os_lock(&s->lock);
    s->ring[(s->head + s->count) & (SHARD_ENTRIES - 1)] = (struct quarantined){addr, size};
    s->count++;
    s->bytes += size;
    /* Once over the bound, a whole batch leaves: the caller's lookups for a batch overlap
     * their cache misses, where one eviction per free would wait for each in turn. */
    bool over = s->bytes > shard_budget || s->count == SHARD_ENTRIES;
    while (over && n < QUARANTINE_EVICT_MAX && s->count > 0) {
        evicted[n++] = s->ring[s->head];
        s->bytes -= s->ring[s->head].size;
        s->head = (s->head + 1) & (SHARD_ENTRIES - 1);
        s->count--;
    }
    os_unlock(&s->lock);
    return n;
}

void quarantine_lock_all(void)
{
    for (int i = 0; i < SHARDS; i++)
        os_lock(&shards[i].lock);
}

void quarantine_unlock_all(void)
{
    for (int i = SHARDS - 1; i >= 0; i--)
        os_unlock(&shards[i].lock);
}

void quarantine_reset_locks(void)
{
    for (int i = 0; i < SHARDS; i++)
        os_lock_reset(&shards[i].lock);
}
