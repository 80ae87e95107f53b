/* blocks.c — the sharded block table (see blocks.h). */
#include "blocks.h"

#include <string.h>

#include "os.h"

#define SHARD_COUNT 64
#define PAGE_SHIFT 12
#define DIRECTORY_INITIAL 64      /* pages per shard directory; a power of two */
#define PAGE_SLOTS_MIN 4          /* slots of a page's own table; a power of two */

/* Blocks are filed by the page they start in: a shard (chosen by the page) keeps a
 * directory of its pages, and each page a small table of its blocks. Blocks made one
 * after another share a page, so their entries share a few cache lines and the
 * directory stays small enough to stay cached; one flat table keyed by a mixed hash put
 * nearly every insert, free and eviction on a cache miss (88% of its time on the first
 * slot load, on python3). */
struct page_blocks {
    uintptr_t page;               /* addr >> PAGE_SHIFT */
    uint32_t count, capacity;     /* count 0: empty, dropped when the directory is rebuilt */
    struct block *slots;          /* open addressing on the offset in the page */
};

struct shard {
    struct spinlock lock;
    size_t capacity, used, count; /* directory slots, directory slots in use, live blocks */
    /* Counted under the lock with the table change, so that with every lock held (the
     * exit scan) allocs - frees is exactly the number of blocks not yet freed. */
    uint64_t inserted, released, bytes_inserted;
    struct page_blocks *pages;
} __attribute__((aligned(64)));

static struct pool *block_pool;
static struct shard shards[SHARD_COUNT];

static uint64_t hash_page(uintptr_t page)
{
    uint64_t h = (uint64_t)page * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

static struct shard *shard_of(uintptr_t addr)
{
    return &shards[hash_page(addr >> PAGE_SHIFT) >> 58 & (SHARD_COUNT - 1)];
}

/* A block's home slot in its page's table. Any byte offset can start a block (guarded
 * blocks are only naturally aligned), so the whole offset is mixed. */
static size_t home_in_page(uintptr_t addr, uint32_t capacity)
{
    uint32_t offset = (uint32_t)(addr & ((1u << PAGE_SHIFT) - 1));
    return (size_t)((offset * 0x9e3779b1u) >> 16) & (capacity - 1);
}

bool blocks_init(struct pool *pool)
{
    block_pool = pool;
    for (int i = 0; i < SHARD_COUNT; i++) {
        shards[i].pages = pool_alloc(pool, DIRECTORY_INITIAL * sizeof(struct page_blocks));
        if (!shards[i].pages)
            return false;
        shards[i].capacity = DIRECTORY_INITIAL;
    }
    return true;
}

/* The directory slot of page, or the empty slot where it would go. */
static struct page_blocks *find_page(const struct shard *s, uintptr_t page)
{
    size_t mask = s->capacity - 1;
    for (size_t i = hash_page(page) & mask;; i = (i + 1) & mask)
        if (!s->pages[i].slots || s->pages[i].page == page)
            return &s->pages[i];
}

/* The slot of addr in its page's table, or the empty slot where it would go. */
static struct block *find_in_page(const struct page_blocks *pg, uintptr_t addr)
{
    size_t mask = pg->capacity - 1;
    for (size_t i = home_in_page(addr, pg->capacity);; i = (i + 1) & mask)
        if (pg->slots[i].addr == 0 || pg->slots[i].addr == addr)
            return &pg->slots[i];
}

/* The live slot of addr, or NULL. */
static struct block *find_block(const struct shard *s, uintptr_t addr)
{
    const struct page_blocks *pg = find_page(s, addr >> PAGE_SHIFT);
    if (!pg->slots || addr == 0)
        return NULL;
    struct block *b = find_in_page(pg, addr);
    return b->addr == addr ? b : NULL;
}

/* Refiles every page that still holds blocks into a directory of `capacity` slots; the
 * tables of empty pages go back to the pool. */
static bool rebuild_directory(struct shard *s, size_t capacity)
{
    struct page_blocks *old = s->pages;
    size_t old_capacity = s->capacity;
    struct page_blocks *fresh = pool_alloc(block_pool, capacity * sizeof *fresh);
    if (!fresh)
        return false;
    s->pages = fresh;
    s->capacity = capacity;
    s->used = 0;
    for (size_t i = 0; i < old_capacity; i++) {
        if (!old[i].slots)
            continue;
        if (old[i].count == 0) {
            pool_free(block_pool, old[i].slots);
            continue;
        }
        *find_page(s, old[i].page) = old[i];
        s->used++;
    }
    pool_free(block_pool, old);
    return true;
}

/* Room for one more page: drops empty pages first, doubles only when that is not enough. */
static bool directory_make_room(struct shard *s)
{
    if ((s->used + 1) * 4 <= s->capacity * 3)
        return true;
    size_t nonempty = 0;
    for (size_t i = 0; i < s->capacity; i++)
        nonempty += s->pages[i].slots && s->pages[i].count;
    return rebuild_directory(s, (nonempty + 1) * 2 <= s->capacity ? s->capacity : s->capacity * 2);
}

static bool grow_page(struct page_blocks *pg)
{
    uint32_t capacity = pg->capacity * 2;
    struct block *old = pg->slots, *fresh = pool_alloc(block_pool, capacity * sizeof *fresh);
    if (!fresh)
        return false;
    pg->slots = fresh;
    pg->capacity = capacity;
    for (uint32_t i = 0; i < capacity / 2; i++)
        if (old[i].addr)
            *find_in_page(pg, old[i].addr) = old[i];
    pool_free(block_pool, old);
    return true;
}

/* The page table for addr's page, made when missing; NULL when the pool is exhausted. */
static struct page_blocks *page_for_insert(struct shard *s, uintptr_t addr)
{
    uintptr_t page = addr >> PAGE_SHIFT;
    struct page_blocks *pg = find_page(s, page);
    if (!pg->slots) {
        if (!directory_make_room(s))
            return NULL;
        pg = find_page(s, page);
        if (!pg->slots) {
            struct block *slots = pool_alloc(block_pool, PAGE_SLOTS_MIN * sizeof *slots);
            if (!slots)
                return NULL;
            *pg = (struct page_blocks){.page = page, .capacity = PAGE_SLOTS_MIN, .slots = slots};
            s->used++;
        }
    }
    if ((pg->count + 1) * 4 > pg->capacity * 3 && !grow_page(pg))
        return pg->count + 1 < pg->capacity ? pg : NULL;
    return pg;
}

bool blocks_insert(const struct block *block)
{
    struct shard *s = shard_of(block->addr);

    os_lock(&s->lock);
    struct page_blocks *pg = page_for_insert(s, block->addr);
    if (pg) {
        struct block *slot = find_in_page(pg, block->addr);
        if (slot->addr == 0) {
            pg->count++;
            s->count++;
        }
        *slot = *block;
        s->inserted++;
        s->bytes_inserted += block->size;
    }
    os_unlock(&s->lock);
    return pg != NULL;
}

/* Backward-shift deletion keeps probe chains intact without tombstones. */
static void delete_slot(struct shard *s, struct page_blocks *pg, struct block *slot)
{
    size_t mask = pg->capacity - 1, hole = (size_t)(slot - pg->slots);
    for (size_t i = (hole + 1) & mask; pg->slots[i].addr != 0; i = (i + 1) & mask) {
        size_t home = home_in_page(pg->slots[i].addr, pg->capacity);
        /* Move the entry into the hole unless its home lies cyclically in (hole, i]. */
        bool home_after_hole = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
        if (!home_after_hole) {
            pg->slots[hole] = pg->slots[i];
            hole = i;
        }
    }
    pg->slots[hole].addr = 0;
    pg->count--;
    s->count--;
}

/* Copies the block starting at addr into *out, removing it when `remove` is set. */
static bool lookup(uintptr_t addr, struct block *out, bool remove)
{
    struct shard *s = shard_of(addr);

    os_lock(&s->lock);
    struct block *b = find_block(s, addr);
    if (b) {
        *out = *b;
        if (remove)
            delete_slot(s, find_page(s, addr >> PAGE_SHIFT), b);
    }
    os_unlock(&s->lock);
    return b != NULL;
}

void blocks_prefetch(uintptr_t addr)
{
    const struct shard *s = shard_of(addr);
    size_t capacity = __atomic_load_n(&s->capacity, __ATOMIC_RELAXED);
    const struct page_blocks *pages = __atomic_load_n(&s->pages, __ATOMIC_RELAXED);
    __builtin_prefetch(&pages[hash_page(addr >> PAGE_SHIFT) & (capacity - 1)]);
}

bool blocks_remove(uintptr_t addr, struct block *out)
{
    return lookup(addr, out, true);
}

bool blocks_find(uintptr_t addr, struct block *out)
{
    return lookup(addr, out, false);
}

bool blocks_release(uintptr_t addr, uint8_t poison, size_t poison_len, struct block *out)
{
    struct shard *s = shard_of(addr);

    os_lock(&s->lock);
    struct block *b = find_block(s, addr);
    if (b) {
        *out = *b;
        delete_slot(s, find_page(s, addr >> PAGE_SHIFT), b);
        s->released++;
        if (!(out->flags & BLOCK_GUARDED))
            memset((void *)addr, poison, poison_len < out->size ? poison_len : out->size);
    }
    os_unlock(&s->lock);
    return b != NULL;
}

void blocks_for_each(void (*fn)(const struct block *block, void *ctx), void *ctx)
{
    for (int k = 0; k < SHARD_COUNT; k++) {
        for (size_t p = 0; p < shards[k].capacity; p++) {
            const struct page_blocks *pg = &shards[k].pages[p];
            for (uint32_t i = 0; pg->slots && i < pg->capacity; i++)
                if (pg->slots[i].addr)
                    fn(&pg->slots[i], ctx);
        }
    }
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
