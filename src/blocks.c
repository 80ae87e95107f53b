/* blocks.c — the sharded block table (see blocks.h). */
#include "blocks.h"

#include <string.h>

#include "os.h"

#define SHARD_COUNT 64
#define INITIAL_CAPACITY 256     /* slots per shard; a power of two */

struct shard {
    struct spinlock lock;
    size_t capacity, count;
    /* Counted under the lock with the table change, so that with every lock held (the
     * exit scan) allocs - frees is exactly the number of blocks not yet freed. */
    uint64_t inserted, released, bytes_inserted;
    struct block *slots;
} __attribute__((aligned(64)));

static struct pool *block_pool;
static struct shard shards[SHARD_COUNT];

/* Heap addresses are 16-aligned: drop those bits, then mix so shard and slot bits differ. */
static uint64_t hash_addr(uintptr_t addr)
{
    uint64_t h = (uint64_t)(addr >> 4) * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

static struct shard *shard_of(uint64_t hash)
{
    return &shards[hash >> 58 & (SHARD_COUNT - 1)];
}

bool blocks_init(struct pool *pool)
{
    block_pool = pool;
    for (int i = 0; i < SHARD_COUNT; i++) {
        shards[i].slots = pool_alloc(pool, INITIAL_CAPACITY * sizeof(struct block));
        if (!shards[i].slots)
            return false;
        shards[i].capacity = INITIAL_CAPACITY;
    }
    return true;
}

static size_t find_slot(const struct shard *s, uintptr_t addr, uint64_t hash)
{
    size_t mask = s->capacity - 1;
    size_t i = hash & mask;
    while (s->slots[i].addr != 0 && s->slots[i].addr != addr)
        i = (i + 1) & mask;
    return i;
}

static bool grow(struct shard *s)
{
    size_t old_capacity = s->capacity;
    struct block *old = s->slots;
    struct block *fresh = pool_alloc(block_pool, old_capacity * 2 * sizeof(struct block));
    if (!fresh)
        return false;
    s->slots = fresh;
    s->capacity = old_capacity * 2;
    for (size_t i = 0; i < old_capacity; i++)
        if (old[i].addr)
            s->slots[find_slot(s, old[i].addr, hash_addr(old[i].addr))] = old[i];
    pool_free(block_pool, old);
    return true;
}

bool blocks_insert(const struct block *block)
{
    uint64_t hash = hash_addr(block->addr);
    struct shard *s = shard_of(hash);
    bool ok = true;

    os_lock(&s->lock);
    if ((s->count + 1) * 4 > s->capacity * 3 && !grow(s))
        ok = s->count + 1 < s->capacity;
    if (ok) {
        size_t i = find_slot(s, block->addr, hash);
        if (s->slots[i].addr == 0)
            s->count++;
        s->slots[i] = *block;
        s->inserted++;
        s->bytes_inserted += block->size;
    }
    os_unlock(&s->lock);
    return ok;
}

/* Backward-shift deletion keeps probe chains intact without tombstones. */
static void delete_slot(struct shard *s, size_t hole)
{
    size_t mask = s->capacity - 1;
    for (size_t i = (hole + 1) & mask; s->slots[i].addr != 0; i = (i + 1) & mask) {
        size_t home = hash_addr(s->slots[i].addr) & mask;
        /* Move the entry into the hole unless its home lies cyclically in (hole, i]. */
        bool home_after_hole = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
        if (!home_after_hole) {
            s->slots[hole] = s->slots[i];
            hole = i;
        }
    }
    s->slots[hole].addr = 0;
    s->count--;
}

/* Copies the block starting at addr into *out, removing it when `remove` is set. */
static bool lookup(uintptr_t addr, struct block *out, bool remove)
{
    uint64_t hash = hash_addr(addr);
    struct shard *s = shard_of(hash);
    bool found;

    os_lock(&s->lock);
    size_t i = find_slot(s, addr, hash);
    found = s->slots[i].addr == addr && addr != 0;
    if (found) {
        *out = s->slots[i];
        if (remove)
            delete_slot(s, i);
    }
    os_unlock(&s->lock);
    return found;
}

bool blocks_remove(uintptr_t addr, struct block *out)
{
    return lookup(addr, out, true);
}

bool blocks_find(uintptr_t addr, struct block *out)
{
    return lookup(addr, out, false);
}

enum block_release blocks_release(uintptr_t addr, uint32_t free_stack, uint8_t poison,
                                  size_t poison_len, struct block *out)
{
    uint64_t hash = hash_addr(addr);
    struct shard *s = shard_of(hash);
    enum block_release result = RELEASE_NOT_FOUND;

    os_lock(&s->lock);
    size_t i = find_slot(s, addr, hash);
    if (s->slots[i].addr == addr && addr != 0) {
        *out = s->slots[i];
        result = out->state == BLOCK_FREED ? RELEASE_ALREADY_FREED : RELEASE_DONE;
        s->slots[i].state = BLOCK_FREED;
        if (result == RELEASE_DONE) {
            s->slots[i].free_stack = free_stack;
            s->released++;
        }
        if (result == RELEASE_DONE && !(out->flags & BLOCK_GUARDED))
            memset((void *)addr, poison, poison_len < out->size ? poison_len : out->size);
    }
    os_unlock(&s->lock);
    return result;
}

void blocks_for_each(void (*fn)(const struct block *block, void *ctx), void *ctx)
{
    for (int k = 0; k < SHARD_COUNT; k++)
        for (size_t i = 0; i < shards[k].capacity; i++)
            if (shards[k].slots[i].addr)
                fn(&shards[k].slots[i], ctx);
}

void blocks_totals(uint64_t *allocs, uint64_t *frees, uint64_t *bytes)
{
    *allocs = *frees = *bytes = 0;
    for (int k = 0; k < SHARD_COUNT; k++) {
        *allocs += __atomic_load_n(&shards[k].inserted, __ATOMIC_RELAXED);
        *frees += __atomic_load_n(&shards[k].released, __ATOMIC_RELAXED);
        *bytes += __atomic_load_n(&shards[k].bytes_inserted, __ATOMIC_RELAXED);
    }
}

size_t blocks_live_count(void)
{
    size_t n = 0;
    for (int k = 0; k < SHARD_COUNT; k++)
        n += __atomic_load_n(&shards[k].count, __ATOMIC_RELAXED);
    return n;
}

void blocks_lock_all(void)
{
    for (int k = 0; k < SHARD_COUNT; k++)
        os_lock(&shards[k].lock);
}

void blocks_unlock_all(void)
{
    for (int k = SHARD_COUNT - 1; k >= 0; k--)
        os_unlock(&shards[k].lock);
}

void blocks_reset_locks(void)
{
    for (int k = 0; k < SHARD_COUNT; k++)
        os_lock_reset(&shards[k].lock);
}
