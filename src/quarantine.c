/* quarantine.c — the sharded FIFO of freed blocks (see quarantine.h). */
#include "quarantine.h"

#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "os.h"

#define SHARDS 8
/* A shard's ring grows by doubling from RING_ENTRIES_MIN to RING_ENTRIES_MAX (powers of
 * two: positions wrap by mask): running positions sweep the whole ring, so a ring bigger
 * than the shard needs is memory touched for nothing (16 MB with 8 threads). */
#define RING_ENTRIES_MIN (1u << 10)
#define RING_ENTRIES_MAX (1u << 16)
#define GLIBC_CHUNK_HEADER 8         /* a chunk's size word; chunks come in 16-byte steps */

struct shard {
    struct spinlock lock;
    struct block *ring;
    uint64_t capacity;
    uint64_t head, count;            /* head: running position of the oldest block */
    size_t bytes;
    bool used;                       /* pushed to at least once */
} __attribute__((aligned(64)));

static struct pool *ring_pool;
static struct shard shards[SHARDS];
static size_t max_bytes_total;       /* --quarantine-size */
static size_t shard_budget;          /* at most max_bytes_total / SHARDS */
static unsigned shards_used;

#define TAG_MAGIC 0x5155415241544147ull   /* "GATARAUQ" */
#define POSITION_BITS 56

struct tag {
    uint64_t addr_check;             /* addr ^ TAG_MAGIC */
    uint64_t place;                  /* shard << POSITION_BITS | position */
};

static struct tag tag_of(uintptr_t addr, struct quarantine_place place)
{
    return (struct tag){addr ^ TAG_MAGIC,
                        (uint64_t)place.shard << POSITION_BITS | (place.position & ((1ull << POSITION_BITS) - 1))};
}

bool quarantine_init(struct pool *pool, size_t max_bytes)
{
    ring_pool = pool;
    max_bytes_total = max_bytes;
    shard_budget = max_bytes / SHARDS;
    shards_used = 0;
    for (int i = 0; i < SHARDS; i++) {
        shards[i] = (struct shard){.ring = pool_alloc(pool, RING_ENTRIES_MIN * sizeof(struct block)),
                                   .capacity = RING_ENTRIES_MIN};
        if (!shards[i].ring)
            return false;
    }
    return true;
}

size_t quarantine_held_bytes(const struct block *block)
{
    size_t head = block->head_shift ? (size_t)1 << block->head_shift : 0;
    return (head + block->size + BLOCK_REDZONE + GLIBC_CHUNK_HEADER + 15) & ~(size_t)15;
}

static struct block *at(struct shard *s, uint64_t position)
{
    return &s->ring[position & (s->capacity - 1)];
}

/* Doubles a full shard's ring, each waiting block moving to its position's new index;
 * false at the largest size or when the pool is exhausted. */
static bool grow_ring(struct shard *s)
{
    uint64_t capacity = s->capacity * 2;
    struct block *ring = capacity <= RING_ENTRIES_MAX ? pool_alloc(ring_pool, capacity * sizeof *ring) : NULL;
    if (!ring)
        return false;
    for (uint64_t p = s->head; p < s->head + s->count; p++)
        ring[p & (capacity - 1)] = *at(s, p);
    pool_free(ring_pool, s->ring);
    s->ring = ring;
    s->capacity = capacity;
    return true;
}

size_t quarantine_push(unsigned shard_index, const struct block *block, struct quarantine_evicted *evicted)
{
    struct shard *s = &shards[shard_index % SHARDS];
    struct quarantine_place place = {shard_index % SHARDS, 0};
    size_t n = 0;

    os_lock(&s->lock);
    if (!s->used) {
        s->used = true;
        __atomic_fetch_add(&shards_used, 1, __ATOMIC_RELAXED);
    }
    place.position = s->head + s->count;
    *at(s, place.position) = *block;
    struct tag tag = tag_of(block->addr, place);
    memcpy((void *)(block->addr - sizeof tag), &tag, sizeof tag);
    s->count++;
    s->bytes += quarantine_held_bytes(block);
    /* Once over the bound, a whole batch leaves: the caller's checks of a batch overlap
     * their cache misses, where one eviction per free would wait for each in turn. */
    bool full = s->count == s->capacity && !grow_ring(s);
    bool over = s->bytes > __atomic_load_n(&shard_budget, __ATOMIC_RELAXED) || full;
    while (over && n < QUARANTINE_EVICT_MAX && s->count > 0) {
        evicted[n].block = *at(s, s->head);
        evicted[n].place = (struct quarantine_place){place.shard, s->head};
        s->bytes -= quarantine_held_bytes(&evicted[n++].block);
        s->head++;
        s->count--;
    }
    os_unlock(&s->lock);
    return n;
}

void quarantine_fit_to_heap(size_t live_bytes)
{
    size_t share = max_bytes_total / SHARDS;
    size_t total = live_bytes < share ? share : live_bytes < max_bytes_total ? live_bytes : max_bytes_total;
    unsigned used = __atomic_load_n(&shards_used, __ATOMIC_RELAXED);
    size_t per_shard = used > 1 ? total / used : total;
    __atomic_store_n(&shard_budget, per_shard < share ? per_shard : share, __ATOMIC_RELAXED);
}

/* addr may be anything a program passed to free: read its would-be tag through the
 * kernel, which answers EFAULT instead of faulting. */
static bool read_tag(uintptr_t addr, struct tag *tag)
{
    struct iovec local = {tag, sizeof *tag}, remote = {(void *)(addr - sizeof *tag), sizeof *tag};
    return addr >= sizeof *tag &&
           process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)sizeof *tag;
}

bool quarantine_find(uintptr_t addr, struct block *out)
{
    struct tag tag;
    if (!read_tag(addr, &tag) || tag.addr_check != (addr ^ TAG_MAGIC))
        return false;
    uint32_t shard_index = (uint32_t)(tag.place >> POSITION_BITS);
    uint64_t position = tag.place & ((1ull << POSITION_BITS) - 1);
    if (shard_index >= SHARDS)
        return false;
    struct shard *s = &shards[shard_index];
    bool found;

    os_lock(&s->lock);
    found = position >= s->head && position < s->head + s->count && at(s, position)->addr == addr;
    if (found)
        *out = *at(s, position);
    os_unlock(&s->lock);
    return found;
}

uintptr_t quarantine_tag_damage(const struct block *block, struct quarantine_place place)
{
    struct tag want = tag_of(block->addr, place), have;
    memcpy(&have, (const void *)(block->addr - sizeof have), sizeof have);
    if (have.addr_check == want.addr_check && have.place == want.place)
        return 0;
    const uint8_t *h = (const uint8_t *)&have, *w = (const uint8_t *)&want;
    for (size_t i = sizeof have; i-- > 0;)
        if (h[i] != w[i])
            return block->addr - sizeof have + i;
    return 0;
}

void quarantine_for_each(void (*fn)(const struct block *block, struct quarantine_place place, void *ctx),
                         void *ctx)
{
    for (uint32_t i = 0; i < SHARDS; i++)
        for (uint64_t p = shards[i].head; p < shards[i].head + shards[i].count; p++)
            fn(at(&shards[i], p), (struct quarantine_place){i, p}, ctx);
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
