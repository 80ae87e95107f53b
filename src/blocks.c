/* blocks.c — the sharded block table (see blocks.h). */
#include "blocks.h"

#include "os.h"

#define SHARD_COUNT 64
#define SHARD_REGION_SHIFT 20     /* a shard locks 1 MiB regions: a thread's run of blocks stays on its lock */
#define PAGE_SHIFT 12
#define PAGE_OFFSET_MASK ((1u << PAGE_SHIFT) - 1)
#define PAGE_SLOTS_MIN 4          /* slots of a page's own table; a power of two */
/* The page map: a root of leaves, each leaf the pages of 1 GiB, for 47-bit user
 * addresses (blocks above them, which only a program mapping there itself could make,
 * go unrecorded as when the pool is exhausted). */
#define ADDRESS_BITS 47
#define LEAF_BITS 18
#define LEAF_PAGES (1u << LEAF_BITS)
#define ROOT_ENTRIES (1u << (ADDRESS_BITS - PAGE_SHIFT - LEAF_BITS))

/* A block as its page's table holds it: 16 bytes, half of struct block, so that a page's
 * entries take half the cache lines (the table was the biggest part of memtrace's memory
 * on python3, and its cache misses the biggest part of its time). The page number is the
 * table's own; free_stack and state are not kept, a filed block being live. */
struct block_slot {
    uint64_t size_offset;         /* size << PAGE_SHIFT | offset in the page */
    uint64_t meta;                /* 0: empty slot; else the fields below */
};
#define SLOT_USED 1ull
#define SLOT_GUARDED 2ull
#define SLOT_KIND_SHIFT 2         /* 2 bits */
#define SLOT_HEAD_SHIFT 4         /* 6 bits */
#define SLOT_TID_SHIFT 10         /* 24 bits: Linux thread ids stay below 2^22 (pid_max) */
#define SLOT_STACK_SHIFT 34       /* 30 bits: stack ids stay below STACK_ID_LIMIT */

/* Blocks are filed by the page they start in, in a page map indexed by address (as a
 * processor's page table is), each page with a small table of its blocks. Neighbouring
 * pages have neighbouring map entries, so the map of a heap stays cached, and a page's
 * table can be found and prefetched without a lock (blocks_prefetch). A hashed
 * directory of pages put a cache miss before every table access. */
struct page_blocks {
    uint32_t count, capacity;     /* a page's table is kept when it empties: pages refill */
    struct block_slot *slots;     /* open addressing on the offset in the page */
};

/* A leaf and the range of its pages that ever held a block (what blocks_for_each reads). */
struct page_leaf {
    struct page_blocks *pages;
    uint32_t lo, hi;
};

struct shard {
    struct spinlock lock;
    size_t count;                 /* live blocks */
    /* Counted under the lock with the table change, so that with every lock held (the
     * exit scan) allocs - frees is exactly the number of blocks not yet freed. */
    uint64_t inserted, released, bytes_inserted;
} __attribute__((aligned(64)));

static struct pool *block_pool;
static struct shard shards[SHARD_COUNT];
static struct page_leaf *root;    /* ROOT_ENTRIES leaves, from the pool: touched where used */
static struct spinlock leaf_lock;

static uint64_t hash_page(uintptr_t page)
{
    uint64_t h = (uint64_t)page * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

static struct shard *shard_of(uintptr_t addr)
{
    return &shards[hash_page(addr >> SHARD_REGION_SHIFT) >> 58 & (SHARD_COUNT - 1)];
}

/* A block's home slot in its page's table. Any byte offset can start a block (guarded
 * blocks are only naturally aligned), so the whole offset is mixed. */
static size_t home_in_page(uint32_t offset, uint32_t capacity)
{
    return (size_t)((offset * 0x9e3779b1u) >> 16) & (capacity - 1);
}

static uint32_t slot_offset(const struct block_slot *slot)
{
    return (uint32_t)(slot->size_offset & PAGE_OFFSET_MASK);
}

static struct block_slot pack_block(const struct block *b)
{
    uint64_t guarded = b->flags & BLOCK_GUARDED ? SLOT_GUARDED : 0;
    return (struct block_slot){
        .size_offset = (uint64_t)b->size << PAGE_SHIFT | (b->addr & PAGE_OFFSET_MASK),
        .meta = SLOT_USED | guarded | (uint64_t)(b->kind & 3) << SLOT_KIND_SHIFT |
                (uint64_t)(b->head_shift & 63) << SLOT_HEAD_SHIFT |
                (uint64_t)(b->tid & 0xffffff) << SLOT_TID_SHIFT |
                (uint64_t)b->alloc_stack << SLOT_STACK_SHIFT,
    };
}

static void unpack_block(const struct block_slot *slot, uintptr_t page, struct block *out)
{
    *out = (struct block){
        .addr = page << PAGE_SHIFT | slot_offset(slot),
        .size = (size_t)(slot->size_offset >> PAGE_SHIFT),
        .alloc_stack = (uint32_t)(slot->meta >> SLOT_STACK_SHIFT),
        .tid = (uint32_t)(slot->meta >> SLOT_TID_SHIFT & 0xffffff),
        .kind = (uint8_t)(slot->meta >> SLOT_KIND_SHIFT & 3),
        .state = BLOCK_LIVE,
        .head_shift = (uint8_t)(slot->meta >> SLOT_HEAD_SHIFT & 63),
        .flags = slot->meta & SLOT_GUARDED ? BLOCK_GUARDED : 0,
    };
}

bool blocks_init(struct pool *pool)
{
    block_pool = pool;
    root = pool_alloc(pool, ROOT_ENTRIES * sizeof *root);
    return root != NULL;
}

/* The map entry of page; NULL when its leaf does not exist (and `create` is not set or
 * the pool is exhausted) or the page lies above the map. */
static struct page_blocks *page_entry(uintptr_t page, bool create)
{
    uintptr_t r = page >> LEAF_BITS;
    if (r >= ROOT_ENTRIES)
        return NULL;
    struct page_blocks *leaf = __atomic_load_n(&root[r].pages, __ATOMIC_ACQUIRE);
    if (!leaf && create) {
        os_lock(&leaf_lock);
        leaf = root[r].pages;
        if (!leaf && (leaf = pool_alloc(block_pool, LEAF_PAGES * sizeof *leaf)) != NULL) {
            root[r].lo = LEAF_PAGES;
            __atomic_store_n(&root[r].pages, leaf, __ATOMIC_RELEASE);
        }
        os_unlock(&leaf_lock);
    }
    return leaf ? &leaf[page & (LEAF_PAGES - 1)] : NULL;
}

/* Widens the range of the leaf's pages that blocks_for_each reads to hold page. */
static void leaf_note_page(uintptr_t page)
{
    struct page_leaf *leaf = &root[page >> LEAF_BITS];
    uint32_t index = (uint32_t)(page & (LEAF_PAGES - 1)), seen;
    while ((seen = __atomic_load_n(&leaf->lo, __ATOMIC_RELAXED)) > index &&
           !__atomic_compare_exchange_n(&leaf->lo, &seen, index, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
    while ((seen = __atomic_load_n(&leaf->hi, __ATOMIC_RELAXED)) <= index &&
           !__atomic_compare_exchange_n(&leaf->hi, &seen, index + 1, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

/* The slot of the block at `offset` in the page, or the empty slot where it would go. */
static struct block_slot *find_in_page(const struct page_blocks *pg, uint32_t offset)
{
    size_t mask = pg->capacity - 1;
    for (size_t i = home_in_page(offset, pg->capacity);; i = (i + 1) & mask)
        if (pg->slots[i].meta == 0 || slot_offset(&pg->slots[i]) == offset)
            return &pg->slots[i];
}

/* The live slot of addr, or NULL; *page gets its page's table. */
static struct block_slot *find_block(uintptr_t addr, struct page_blocks **page)
{
    struct page_blocks *pg = *page = page_entry(addr >> PAGE_SHIFT, false);
    if (!pg || !pg->slots || addr == 0)
        return NULL;
    struct block_slot *slot = find_in_page(pg, (uint32_t)(addr & PAGE_OFFSET_MASK));
    return slot->meta ? slot : NULL;
}

static bool grow_page(struct page_blocks *pg)
{
    uint32_t capacity = pg->capacity * 2;
    struct block_slot *old = pg->slots, *fresh = pool_alloc(block_pool, capacity * sizeof *fresh);
    if (!fresh)
        return false;
    pg->slots = fresh;
    pg->capacity = capacity;
    for (uint32_t i = 0; i < capacity / 2; i++)
        if (old[i].meta)
            *find_in_page(pg, slot_offset(&old[i])) = old[i];
    pool_free(block_pool, old);
    return true;
}

/* The table for addr's page, made when missing; NULL when the pool is exhausted. */
static struct page_blocks *page_for_insert(uintptr_t addr)
{
    struct page_blocks *pg = page_entry(addr >> PAGE_SHIFT, true);
    if (!pg)
        return NULL;
    if (!pg->slots) {
        struct block_slot *slots = pool_alloc(block_pool, PAGE_SLOTS_MIN * sizeof *slots);
        if (!slots)
            return NULL;
        pg->capacity = PAGE_SLOTS_MIN;
        __atomic_store_n(&pg->slots, slots, __ATOMIC_RELEASE);
        leaf_note_page(addr >> PAGE_SHIFT);
    }
    if ((pg->count + 1) * 4 > pg->capacity * 3 && !grow_page(pg))
        return pg->count + 1 < pg->capacity ? pg : NULL;
    return pg;
}

bool blocks_insert(const struct block *block)
{
    struct shard *s = shard_of(block->addr);

    os_lock(&s->lock);
    struct page_blocks *pg = page_for_insert(block->addr);
    if (pg) {
        struct block_slot *slot = find_in_page(pg, (uint32_t)(block->addr & PAGE_OFFSET_MASK));
        if (slot->meta == 0) {
            pg->count++;
            s->count++;
        }
        *slot = pack_block(block);
        s->inserted++;
        s->bytes_inserted += block->size;
    }
    os_unlock(&s->lock);
    return pg != NULL;
}

/* Backward-shift deletion keeps probe chains intact without tombstones. */
static void delete_slot(struct shard *s, struct page_blocks *pg, struct block_slot *slot)
{
    size_t mask = pg->capacity - 1, hole = (size_t)(slot - pg->slots);
    for (size_t i = (hole + 1) & mask; pg->slots[i].meta != 0; i = (i + 1) & mask) {
        size_t home = home_in_page(slot_offset(&pg->slots[i]), pg->capacity);
        /* Move the entry into the hole unless its home lies cyclically in (hole, i]. */
        bool home_after_hole = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
        if (!home_after_hole) {
            pg->slots[hole] = pg->slots[i];
            hole = i;
        }
    }
    pg->slots[hole].meta = 0;
    pg->count--;
    s->count--;
}

void blocks_prefetch(uintptr_t addr)
{
    const struct page_blocks *pg = page_entry(addr >> PAGE_SHIFT, false);
    if (!pg)
        return;
    const struct block_slot *slots = __atomic_load_n(&pg->slots, __ATOMIC_RELAXED);
    uint32_t capacity = __atomic_load_n(&pg->capacity, __ATOMIC_RELAXED);
    if (slots && capacity)
        __builtin_prefetch(&slots[home_in_page((uint32_t)(addr & PAGE_OFFSET_MASK), capacity)]);
}

bool blocks_find(uintptr_t addr, struct block *out)
{
    struct shard *s = shard_of(addr);

    os_lock(&s->lock);
    struct page_blocks *pg;
    struct block_slot *b = find_block(addr, &pg);
    if (b)
        unpack_block(b, addr >> PAGE_SHIFT, out);
    os_unlock(&s->lock);
    return b != NULL;
}

bool blocks_release(uintptr_t addr, struct block *out)
{
    struct shard *s = shard_of(addr);

    os_lock(&s->lock);
    struct page_blocks *pg;
    struct block_slot *b = find_block(addr, &pg);
    if (b) {
        unpack_block(b, addr >> PAGE_SHIFT, out);
        delete_slot(s, pg, b);
        s->released++;
    }
    os_unlock(&s->lock);
    return b != NULL;
}

void blocks_for_each(void (*fn)(const struct block *block, void *ctx), void *ctx)
{
    for (uintptr_t r = 0; r < ROOT_ENTRIES; r++) {
        const struct page_leaf *leaf = &root[r];
        for (uint32_t p = leaf->lo; leaf->pages && p < leaf->hi; p++) {
            const struct page_blocks *pg = &leaf->pages[p];
            for (uint32_t i = 0; pg->slots && i < pg->capacity; i++) {
                if (!pg->slots[i].meta)
                    continue;
                struct block b;
                unpack_block(&pg->slots[i], r << LEAF_BITS | p, &b);
                fn(&b, ctx);
            }
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
