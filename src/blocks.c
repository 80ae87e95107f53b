/* blocks.c — the sharded block table (see blocks.h). */
#include "blocks.h"

#include "os.h"
#include "slab.h"
#include "stacks.h"

#define SHARD_COUNT 64
#define SHARD_REGION_SHIFT 20     /* page tables are locked by 1 MiB region: a thread's run of blocks stays on one lock */
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

/* Most blocks are not filed in a page's table but by a header word in their own head
 * redzone, found through a bitmap of block starts (a bit for every 16 bytes): free()
 * then reads memory next to what the program used, where a page's table was a cache
 * miss on every malloc and free of a cold page (the largest cost memtrace added on perl,
 * and 35 MB on python3). That takes a block with the smallest head redzone, in a slab
 * slot or made by glibc's malloc (its size is the slot's or glibc's chunk's usable size
 * less a 4-bit slack), whose stack id and thread fit the word. The rest (guarded,
 * over-aligned or mmapped blocks) keep a table. */
#define GRANULE_SHIFT 4
#define LEAF_WORDS (LEAF_PAGES << (PAGE_SHIFT - GRANULE_SHIFT) >> 6)
#define PAGE_WORDS (1u << (PAGE_SHIFT - GRANULE_SHIFT - 6))
#define HEADER_TID_SHIFT 20           /* stack id below it: 20 bits */
#define HEADER_KIND_SHIFT 42          /* thread id: 22 bits */
#define HEADER_SLACK_SHIFT 44         /* 4 bits: glibc's usable size less the redzoned size */
#define HEADER_CHECK_SHIFT 48         /* 16 bits of hash: an underflow that wrote the word */
#define HEADER_TID_LIMIT (1u << 22)
#define HEADER_SLACK_MAX 15u
_Static_assert(STACK_ID_LIMIT <= 1u << HEADER_TID_SHIFT, "a stack id fits a header word");

/* A leaf, its bitmap of header-filed block starts, and the range of its pages that ever
 * held a block (what blocks_for_each reads). The leaves made are chained, so that
 * blocks_for_each reads those instead of the whole root (3 MB, four times at every exit). */
struct page_leaf {
    struct page_blocks *pages;
    uint64_t *starts;
    uint32_t lo, hi;
    struct page_leaf *made_before;
};

/* A thread's share of the counts, and the lock its table changes run under. Threads take
 * shards in turn, so a free of another thread's block (whose bitmap bit an atomic
 * operation clears) does not wait for that thread's lock; holding every shard lock (the
 * exit scan, fork) still leaves no change half done. */
struct shard {
    struct spinlock lock;
    /* Changed under the lock with the table, so that with every lock held allocs - frees
     * is exactly the number of blocks not yet freed. A block may be counted live in one
     * shard and dead in another: only the sums mean anything (modulo 2^64). */
    size_t count;
    uint64_t inserted, released, bytes_inserted, bytes_released;
} __attribute__((aligned(64)));

/* The page tables are not atomic: a page's table changes under its 1 MiB region's lock,
 * taken inside a shard lock. */
struct region_lock {
    struct spinlock lock;
} __attribute__((aligned(64)));

/* The guarded pool's blocks, at most one to a slot, are filed by slot. Filed by page, each
 * took a page-map line of its own (a slot spans 17 pages) and a page table: 2.7 MB once
 * the pool's 8192 slots had all been used, the most memtrace added on a small program. */
#define SLOT_OFFSET_BITS 32
static struct {
    uintptr_t first;              /* slot 0's start */
    size_t stride, span;          /* span = stride * slot count; 0: nothing filed by slot */
    struct block_slot *entries;   /* one per slot, from the pool: touched where used */
} by_slot;

static struct pool *block_pool;
static struct shard shards[SHARD_COUNT];
static struct region_lock region_locks[SHARD_COUNT];
static struct page_leaf *root;    /* ROOT_ENTRIES leaves, from the pool: touched where used */
static struct spinlock leaf_lock;
static struct page_leaf *last_made;  /* chain of the leaves made, under leaf_lock */
static unsigned next_shard;
static __thread struct shard *thread_shard __attribute__((tls_model("initial-exec")));

static struct shard *my_shard(void)
{
    if (!thread_shard)
        thread_shard = &shards[__atomic_fetch_add(&next_shard, 1, __ATOMIC_RELAXED) % SHARD_COUNT];
    return thread_shard;
}

static struct spinlock *region_lock_of(uintptr_t addr)
{
    uint64_t h = (uint64_t)(addr >> SHARD_REGION_SHIFT) * 0x9e3779b97f4a7c15ull;
    return &region_locks[(h ^ (h >> 29)) >> 58 & (SHARD_COUNT - 1)].lock;
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

/* A slot's entry for b, its offset from `base` in the low `offset_bits` bits. */
static struct block_slot pack_block(const struct block *b, uintptr_t base, unsigned offset_bits)
{
    uint64_t guarded = b->flags & BLOCK_GUARDED ? SLOT_GUARDED : 0;
    return (struct block_slot){
        .size_offset = (uint64_t)b->size << offset_bits | (b->addr - base),
        .meta = SLOT_USED | guarded | (uint64_t)(b->kind & 3) << SLOT_KIND_SHIFT |
                (uint64_t)(b->head_shift & 63) << SLOT_HEAD_SHIFT |
                (uint64_t)(b->tid & 0xffffff) << SLOT_TID_SHIFT |
                (uint64_t)b->alloc_stack << SLOT_STACK_SHIFT,
    };
}

static void unpack_block(const struct block_slot *slot, uintptr_t base, unsigned offset_bits,
                         struct block *out)
{
    *out = (struct block){
        .addr = base + (uintptr_t)(slot->size_offset & ((1ull << offset_bits) - 1)),
        .size = (size_t)(slot->size_offset >> offset_bits),
        .alloc_stack = (uint32_t)(slot->meta >> SLOT_STACK_SHIFT),
        .tid = (uint32_t)(slot->meta >> SLOT_TID_SHIFT & 0xffffff),
        .kind = (uint8_t)(slot->meta >> SLOT_KIND_SHIFT & 3),
        .state = BLOCK_LIVE,
        .head_shift = (uint8_t)(slot->meta >> SLOT_HEAD_SHIFT & 63),
        .flags = slot->meta & SLOT_GUARDED ? BLOCK_GUARDED : 0,
    };
}

/* glibc's usable size of the chunk whose memory starts at raw: its header's size word
 * (flags in the low 3 bits, IS_MMAPPED = 2) less the words glibc keeps of it. */
static size_t glibc_usable_size(uintptr_t raw)
{
    size_t field = *(const size_t *)(raw - sizeof(size_t));
    size_t chunk = field & ~(size_t)7, kept = field & 2 ? 2 * sizeof(size_t) : sizeof(size_t);
    return chunk > kept ? chunk - kept : 0;
}

/* The bytes from raw to the end of the memory a redzoned block was placed in: its slab
 * slot's, or glibc's chunk's. */
static size_t chunk_usable_size(uintptr_t raw)
{
    return slab_owns(raw) ? slab_slot_size(raw) : glibc_usable_size(raw);
}

static uint64_t header_check(uintptr_t addr, size_t size, uint64_t fields)
{
    uint64_t h = ((uint64_t)addr * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)size * 0xc2b2ae3d27d4eb4full) ^ fields;
    h *= 0xff51afd7ed558ccdull;
    return (h ^ (h >> 29)) >> HEADER_CHECK_SHIFT;
}

static uint64_t *header_of(uintptr_t addr)
{
    return (uint64_t *)(addr - BLOCK_REDZONE);
}

/* The header word that files b, or 0 when b must go to its page's table. */
static uint64_t header_for(const struct block *b)
{
    if ((b->flags & BLOCK_GUARDED) || b->head_shift != BLOCK_REDZONE_SHIFT ||
        (b->addr & ((1u << GRANULE_SHIFT) - 1)) || b->tid >= HEADER_TID_LIMIT)
        return 0;
    size_t usable = chunk_usable_size(b->addr - BLOCK_REDZONE), redzoned = b->size + 2 * BLOCK_REDZONE;
    if (usable < redzoned || usable - redzoned > HEADER_SLACK_MAX)
        return 0;
    uint64_t fields = b->alloc_stack | (uint64_t)b->tid << HEADER_TID_SHIFT |
                      (uint64_t)(b->kind & 3) << HEADER_KIND_SHIFT |
                      (uint64_t)(usable - redzoned) << HEADER_SLACK_SHIFT;
    return fields | header_check(b->addr, b->size, fields) << HEADER_CHECK_SHIFT;
}

/* The header-filed block at addr. When its word no longer checks (an underflow wrote it,
 * or glibc's header before it), only its address is known: it comes back flagged
 * BLOCK_HEADER_DAMAGED, size 0. */
static void decode_header(uintptr_t addr, struct block *out)
{
    uint64_t word = *header_of(addr), fields = word & ((1ull << HEADER_CHECK_SHIFT) - 1);
    size_t usable = chunk_usable_size(addr - BLOCK_REDZONE);
    size_t redzoned = (size_t)(word >> HEADER_SLACK_SHIFT & HEADER_SLACK_MAX) + 2 * BLOCK_REDZONE;
    *out = (struct block){.addr = addr, .state = BLOCK_LIVE, .head_shift = BLOCK_REDZONE_SHIFT};
    if (usable >= redzoned && header_check(addr, usable - redzoned, fields) == word >> HEADER_CHECK_SHIFT) {
        out->size = usable - redzoned;
        out->alloc_stack = (uint32_t)(word & ((1u << HEADER_TID_SHIFT) - 1));
        out->tid = (uint32_t)(word >> HEADER_TID_SHIFT & (HEADER_TID_LIMIT - 1));
        out->kind = (uint8_t)(word >> HEADER_KIND_SHIFT & 3);
    } else {
        out->flags = BLOCK_HEADER_DAMAGED;
    }
}

bool blocks_init(struct pool *pool)
{
    block_pool = pool;
    by_slot.span = 0;
    last_made = NULL;
    root = pool_alloc(pool, ROOT_ENTRIES * sizeof *root);
    return root != NULL;
}

bool blocks_file_by_slot(uintptr_t first, size_t stride, size_t count)
{
    size_t span;
    if (stride == 0 || stride >> SLOT_OFFSET_BITS || __builtin_mul_overflow(stride, count, &span) ||
        first + span < first)
        return false;
    struct block_slot *entries = pool_alloc(block_pool, count * sizeof *entries);
    if (!entries)
        return false;
    by_slot.first = first;
    by_slot.stride = stride;
    by_slot.entries = entries;
    by_slot.span = span;
    return true;
}

/* The entry of the slot addr lies in (its start in *slot_start), or NULL outside the
 * slots. */
static struct block_slot *slot_entry(uintptr_t addr, uintptr_t *slot_start)
{
    uintptr_t offset = addr - by_slot.first;
    if (offset >= by_slot.span)
        return NULL;
    size_t index = offset / by_slot.stride;
    *slot_start = by_slot.first + index * by_slot.stride;
    return &by_slot.entries[index];
}

/* The leaf of page, made when missing and `create` is set; NULL when it does not exist,
 * the pool is exhausted or the page lies above the map. A leaf's page entries and its
 * bitmap come together: one non-NULL `pages` (published last) means both. */
static struct page_leaf *leaf_of(uintptr_t page, bool create)
{
    uintptr_t r = page >> LEAF_BITS;
    if (r >= ROOT_ENTRIES)
        return NULL;
    if (__atomic_load_n(&root[r].pages, __ATOMIC_ACQUIRE))
        return &root[r];
    if (!create)
        return NULL;
    os_lock(&leaf_lock);
    if (!root[r].pages) {
        struct page_blocks *pages = pool_alloc(block_pool, LEAF_PAGES * sizeof *pages);
        uint64_t *starts = pages ? pool_alloc(block_pool, LEAF_WORDS * sizeof *starts) : NULL;
        if (starts) {
            root[r].starts = starts;
            root[r].lo = LEAF_PAGES;
            root[r].made_before = last_made;
            last_made = &root[r];
            __atomic_store_n(&root[r].pages, pages, __ATOMIC_RELEASE);
        } else {
            pool_free(block_pool, pages);
        }
    }
    os_unlock(&leaf_lock);
    return root[r].pages ? &root[r] : NULL;
}

/* The map entry of page; NULL as for leaf_of. */
static struct page_blocks *page_entry(uintptr_t page, bool create)
{
    struct page_leaf *leaf = leaf_of(page, create);
    return leaf ? &leaf->pages[page & (LEAF_PAGES - 1)] : NULL;
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

/* addr's word in its leaf's bitmap of block starts, and its bit there. */
static uint64_t *start_word(const struct page_leaf *leaf, uintptr_t addr, uint64_t *bit)
{
    uintptr_t granule = (addr >> GRANULE_SHIFT) & (((uintptr_t)LEAF_WORDS << 6) - 1);
    *bit = 1ull << (granule & 63);
    return &leaf->starts[granule >> 6];
}

/* The header is written before the bit is set (release), and read after the bit is
 * seen (acquire): a block's word and bit are never torn apart. */
static bool file_by_header(struct shard *s, const struct block *b, uint64_t header)
{
    struct page_leaf *leaf = leaf_of(b->addr >> PAGE_SHIFT, true);
    if (!leaf)
        return false;
    uint64_t bit, *word = start_word(leaf, b->addr, &bit);
    *header_of(b->addr) = header;
    /* The range, not the word: a load of a word other threads change, before its `lock
     * bts`, moved the line twice (threads freeing each other's blocks share the lines). */
    uint32_t index = (uint32_t)((b->addr >> PAGE_SHIFT) & (LEAF_PAGES - 1));
    if (index < __atomic_load_n(&leaf->lo, __ATOMIC_RELAXED) ||
        index >= __atomic_load_n(&leaf->hi, __ATOMIC_RELAXED))
        leaf_note_page(b->addr >> PAGE_SHIFT);
    /* Only the bit's old value is used: one `lock bts`, not a compare-and-swap loop. */
    if (!(__atomic_fetch_or(word, bit, __ATOMIC_ACQ_REL) & bit))
        s->count++;
    return true;
}

/* Whether a header-filed block starts at addr (into *out); `take` removes it. Of two
 * threads freeing one block at once, only the one that clears the bit finds it. */
static bool find_by_header(struct shard *s, uintptr_t addr, struct block *out, bool take)
{
    struct page_leaf *leaf = leaf_of(addr >> PAGE_SHIFT, false);
    if (!leaf || (addr & ((1u << GRANULE_SHIFT) - 1)))
        return false;
    uint64_t bit, *word = start_word(leaf, addr, &bit);
    /* Outside the slab, read before clearing: a free of a block filed elsewhere would
     * otherwise write its bitmap page into memory. Every slab block is filed here, so
     * there the `lock btr` comes first, and the line moves once. */
    bool present = take && slab_owns(addr) ? true : __atomic_load_n(word, __ATOMIC_ACQUIRE) & bit;
    if (present && take)
        present = __atomic_fetch_and(word, ~bit, __ATOMIC_ACQ_REL) & bit;
    if (!present)
        return false;
    s->count -= take;
    decode_header(addr, out);
    return true;
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

static bool file_in_page(struct shard *s, const struct block *block)
{
    struct page_blocks *pg = page_for_insert(block->addr);
    if (!pg)
        return false;
    struct block_slot *slot = find_in_page(pg, (uint32_t)(block->addr & PAGE_OFFSET_MASK));
    if (slot->meta == 0) {
        pg->count++;
        s->count++;
    }
    *slot = pack_block(block, block->addr & ~(uintptr_t)PAGE_OFFSET_MASK, PAGE_SHIFT);
    return true;
}

/* A slot's block is at most its slot's size: its offset and size both fit the entry. */
static bool file_in_slot(struct shard *s, struct block_slot *entry, uintptr_t slot_start,
                         const struct block *block)
{
    if (block->size > by_slot.stride)
        return false;
    if (entry->meta == 0)
        s->count++;
    *entry = pack_block(block, slot_start, SLOT_OFFSET_BITS);
    return true;
}

bool blocks_insert(const struct block *block)
{
    struct shard *s = my_shard();
    uint64_t header = header_for(block);

    os_lock(&s->lock);
    bool filed;
    if (header) {
        filed = file_by_header(s, block, header);
    } else {
        struct spinlock *region = region_lock_of(block->addr);
        uintptr_t slot_start;
        struct block_slot *entry = slot_entry(block->addr, &slot_start);
        os_lock(region);
        filed = entry ? file_in_slot(s, entry, slot_start, block) : file_in_page(s, block);
        os_unlock(region);
    }
    if (filed) {
        s->inserted++;
        s->bytes_inserted += block->size;
    }
    os_unlock(&s->lock);
    return filed;
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
    const struct page_leaf *leaf = leaf_of(addr >> PAGE_SHIFT, false);
    if (!leaf)
        return;
    uint64_t bit;
    __builtin_prefetch(start_word(leaf, addr, &bit));
    __builtin_prefetch(&leaf->pages[(addr >> PAGE_SHIFT) & (LEAF_PAGES - 1)]);
}

/* Whether the slot's block starts at addr (into *out); `take` empties the entry. */
static bool find_in_slot(struct shard *s, struct block_slot *entry, uintptr_t slot_start,
                         uintptr_t addr, struct block *out, bool take)
{
    if (!entry->meta || (entry->size_offset & ((1ull << SLOT_OFFSET_BITS) - 1)) != addr - slot_start)
        return false;
    unpack_block(entry, slot_start, SLOT_OFFSET_BITS, out);
    if (take) {
        entry->meta = 0;
        s->count--;
    }
    return true;
}

/* Whether addr's page table holds a block at addr (into *out); `take` removes it. */
static bool find_in_page_table(struct shard *s, uintptr_t addr, struct block *out, bool take)
{
    struct page_blocks *pg;
    struct block_slot *b = find_block(addr, &pg);
    if (b) {
        unpack_block(b, addr & ~(uintptr_t)PAGE_OFFSET_MASK, PAGE_SHIFT, out);
        if (take)
            delete_slot(s, pg, b);
    }
    return b != NULL;
}

/* Finds (and with `take` removes) the block at addr, in its slot, its bitmap or its
 * page's table. */
static bool look_up(struct shard *s, uintptr_t addr, struct block *out, bool take)
{
    uintptr_t slot_start;
    struct block_slot *entry = slot_entry(addr, &slot_start);
    if (!entry && find_by_header(s, addr, out, take))
        return true;
    struct spinlock *region = region_lock_of(addr);
    os_lock(region);
    bool found = entry ? find_in_slot(s, entry, slot_start, addr, out, take)
                       : find_in_page_table(s, addr, out, take);
    os_unlock(region);
    return found;
}

bool blocks_find(uintptr_t addr, struct block *out)
{
    struct shard *s = my_shard();
    os_lock(&s->lock);
    bool found = look_up(s, addr, out, false);
    os_unlock(&s->lock);
    return found;
}

/* The last header-filed block starting in [addr - reach, addr], header decoded; false when
 * none. Reads the bitmap a word (1 KiB of addresses) at a time. */
static bool started_at_or_below(uintptr_t addr, size_t reach, struct block *out)
{
    const uintptr_t word_span = (uintptr_t)64 << GRANULE_SHIFT;
    uintptr_t lo = addr > reach ? addr - reach : 0;
    for (uintptr_t at = addr; at >= lo && at >= word_span;) {
        const struct page_leaf *leaf = leaf_of(at >> PAGE_SHIFT, false);
        if (!leaf)
            return false;
        uint64_t bit, *word = start_word(leaf, at, &bit);
        uint64_t starts = __atomic_load_n(word, __ATOMIC_ACQUIRE) & (bit | (bit - 1));
        uintptr_t word_start = at & ~(word_span - 1);
        if (starts) {
            uintptr_t start = word_start + ((uintptr_t)(63 - __builtin_clzll(starts)) << GRANULE_SHIFT);
            if (start < lo)
                return false;
            decode_header(start, out);
            return true;
        }
        at = word_start - 1;
    }
    return false;
}

bool blocks_find_near(uintptr_t addr, struct block *out)
{
    struct block b;
    if (!started_at_or_below(addr + BLOCK_REDZONE, BLOCK_NEAR_REACH, &b) || (b.flags & BLOCK_HEADER_DAMAGED) ||
        addr >= b.addr + b.size + BLOCK_REDZONE)
        return false;
    *out = b;
    return true;
}

bool blocks_release(uintptr_t addr, struct block *out)
{
    struct shard *s = my_shard();
    os_lock(&s->lock);
    bool found = look_up(s, addr, out, true);
    if (found) {
        s->released++;
        s->bytes_released += out->size;
    }
    os_unlock(&s->lock);
    return found;
}

/* Calls fn for each header-filed block starting in the page. */
static void for_each_started(const struct page_leaf *leaf, uintptr_t page,
                             void (*fn)(const struct block *block, void *ctx), void *ctx)
{
    uintptr_t first = page << PAGE_SHIFT;
    uint64_t bit;
    const uint64_t *words = start_word(leaf, first, &bit);
    for (unsigned w = 0; w < PAGE_WORDS; w++) {
        for (uint64_t bits = words[w]; bits; bits &= bits - 1) {
            struct block b;
            decode_header(first + ((uintptr_t)(w * 64 + (unsigned)__builtin_ctzll(bits)) << GRANULE_SHIFT), &b);
            fn(&b, ctx);
        }
    }
}

void blocks_for_each(void (*fn)(const struct block *block, void *ctx), void *ctx)
{
    for (const struct page_leaf *leaf = last_made; leaf; leaf = leaf->made_before) {
        uintptr_t r = (uintptr_t)(leaf - root);
        for (uint32_t p = leaf->lo; p < leaf->hi; p++) {
            const struct page_blocks *pg = &leaf->pages[p];
            for (uint32_t i = 0; pg->slots && i < pg->capacity; i++) {
                if (!pg->slots[i].meta)
                    continue;
                struct block b;
                unpack_block(&pg->slots[i], (r << LEAF_BITS | p) << PAGE_SHIFT, PAGE_SHIFT, &b);
                fn(&b, ctx);
            }
            for_each_started(leaf, r << LEAF_BITS | p, fn, ctx);
        }
    }
    for (size_t i = 0; by_slot.span && i < by_slot.span / by_slot.stride; i++) {
        if (!by_slot.entries[i].meta)
            continue;
        struct block b;
        unpack_block(&by_slot.entries[i], by_slot.first + i * by_slot.stride, SLOT_OFFSET_BITS, &b);
        fn(&b, ctx);
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

size_t blocks_live_bytes(void)
{
    size_t bytes = 0;
    for (int k = 0; k < SHARD_COUNT; k++)
        bytes += __atomic_load_n(&shards[k].bytes_inserted, __ATOMIC_RELAXED) -
                 __atomic_load_n(&shards[k].bytes_released, __ATOMIC_RELAXED);
    return bytes;
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
    for (int k = 0; k < SHARD_COUNT; k++)
        os_lock(&region_locks[k].lock);
}

void blocks_unlock_all(void)
{
    for (int k = SHARD_COUNT - 1; k >= 0; k--)
        os_unlock(&region_locks[k].lock);
    for (int k = SHARD_COUNT - 1; k >= 0; k--)
        os_unlock(&shards[k].lock);
}

void blocks_reset_locks(void)
{
    for (int k = 0; k < SHARD_COUNT; k++) {
        os_lock_reset(&shards[k].lock);
        os_lock_reset(&region_locks[k].lock);
    }
}
