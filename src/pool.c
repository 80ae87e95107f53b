/* pool.c — buddy allocator over mmap'd arenas; the contract is in pool.h.
 * Invariant that keeps zero-fill cheap: a free block is all zero bytes except its two
 * free-list links, because a block is wiped when it is freed and the links are wiped
 * when it leaves a list. So pool_alloc clears 16 bytes, never the whole block, and the
 * untouched pages of a fresh arena stay unfaulted. */
#include "pool.h"

#include "os.h"

#include <string.h>
#include <sys/mman.h>

#define PAGE_ORDER 12             /* x86-64 base page: munmap trims need page-sized arenas */
#define MAX_ORDER 40              /* 1 TiB blocks at most, so 2x alignment maps stay sane */
#define BLOCK_FREE 0x80           /* block_order flag: the block starting here is free */
#define MADVISE_ORDER 16          /* from 64 KiB, wiping drops the pages instead of writing */

struct pool_free_block {
    struct pool_free_block *next, *prev;
};

/* ---------------------------------------------------------------------------------
 * Internals
 * --------------------------------------------------------------------------------- */

/* The smallest order whose block holds size bytes; MAX_ORDER + 1 when none can. */
static unsigned order_for(size_t size)
{
    if (size <= (size_t)1 << POOL_MIN_ORDER)
        return POOL_MIN_ORDER;
    if (size > (size_t)1 << MAX_ORDER)
        return MAX_ORDER + 1;
    return (unsigned)(64 - __builtin_clzl(size - 1));
}

/* Index of the arena holding addr, or -1. Lock-free: arenas are append-only and
 * each is fully set up before narenas is release-stored past it. */
static int arena_index(const struct pool *pool, uintptr_t addr)
{
    unsigned n = __atomic_load_n(&pool->narenas, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < n; i++) {
        uintptr_t base = __atomic_load_n(&pool->arenas[i].base, __ATOMIC_RELAXED);
        unsigned order = __atomic_load_n(&pool->arenas[i].order, __ATOMIC_RELAXED);
        if (addr - base < (uintptr_t)1 << order)
            return (int)i;
    }
    return -1;
}

static uint8_t *unit_of(const struct pool_arena *arena, uintptr_t addr)
{
    return &arena->block_order[(addr - arena->base) >> POOL_MIN_ORDER];
}

/* The order of the live block starting exactly at addr, or 0 when there is none. */
static unsigned live_order(const struct pool_arena *arena, uintptr_t addr)
{
    if (addr & (((uintptr_t)1 << POOL_MIN_ORDER) - 1))
        return 0;
    uint8_t order = *unit_of(arena, addr);
    return order & BLOCK_FREE ? 0 : order;
}

static void push_free(struct pool *pool, struct pool_arena *arena, uintptr_t addr,
                      unsigned order)
{
    struct pool_free_block *block = (struct pool_free_block *)addr;
    struct pool_free_block *head = pool->free_lists[order];
    block->prev = NULL;
    block->next = head;
    if (head)
        head->prev = block;
    pool->free_lists[order] = block;
    *unit_of(arena, addr) = (uint8_t)(order | BLOCK_FREE);
}

/* Takes a free block off its list and clears its links; the caller fixes block_order. */
static void unlink_free(struct pool *pool, uintptr_t addr, unsigned order)
{
    struct pool_free_block *block = (struct pool_free_block *)addr;
    if (block->prev)
        block->prev->next = block->next;
    else
        pool->free_lists[order] = block->next;
    if (block->next)
        block->next->prev = block->prev;
    block->next = block->prev = NULL;
}

/* Restores the all-zero invariant; dropping a big block's pages also returns them
 * to the kernel (private anonymous pages read back as zero). */
static void wipe(uintptr_t addr, unsigned order)
{
    size_t size = (size_t)1 << order;
    if (order < MADVISE_ORDER || madvise((void *)addr, size, MADV_DONTNEED) != 0)
        memset((void *)addr, 0, size);
}

static void *map_anonymous(size_t len)
{
    void *p = os_mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* A region aligned to its own size: map twice the size, give back head and tail. */
static void *map_aligned(size_t size)
{
    uint8_t *raw = map_anonymous(2 * size);
    if (!raw)
        return NULL;
    uintptr_t start = ((uintptr_t)raw + size - 1) & ~((uintptr_t)size - 1);
    size_t head = start - (uintptr_t)raw;
    if (head)
        os_munmap(raw, head);
    if (size - head)
        os_munmap((void *)(start + size), size - head);
    return (void *)start;
}

/* Maps an arena of 1 << order bytes as one free block. NULL when the limit, the arena
 * table or mmap says no. Lock held. */
static struct pool_arena *add_arena(struct pool *pool, unsigned order)
{
    size_t size = (size_t)1 << order;
    if (pool->narenas == POOL_MAX_ARENAS)
        return NULL;
    if (pool->limit && (pool->mapped > pool->limit || size > pool->limit - pool->mapped))
        return NULL;
    void *base = map_aligned(size);
    if (!base)
        return NULL;
    /* Fresh zero pages already say "no block starts here" for every unit. */
    uint8_t *block_order = map_anonymous(size >> POOL_MIN_ORDER);
    if (!block_order) {
        os_munmap(base, size);
        return NULL;
    }
    struct pool_arena *arena = &pool->arenas[pool->narenas];
    arena->base = (uintptr_t)base;
    arena->order = order;
    arena->block_order = block_order;
    pool->mapped += size;
    push_free(pool, arena, arena->base, order);
    __atomic_store_n(&pool->narenas, pool->narenas + 1, __ATOMIC_RELEASE);
    return arena;
}

/* ---------------------------------------------------------------------------------
 * Public interface
 * --------------------------------------------------------------------------------- */

void pool_init(struct pool *pool, unsigned arena_order, size_t limit)
{
    memset(pool, 0, sizeof(*pool));
    if (arena_order < PAGE_ORDER)
        arena_order = PAGE_ORDER;
    if (arena_order > MAX_ORDER)
        arena_order = MAX_ORDER;
    pool->arena_order = arena_order;
    pool->limit = limit;
}

void *pool_alloc(struct pool *pool, size_t size)
{
    unsigned order = order_for(size);
    if (order > MAX_ORDER)
        return NULL;
    os_lock(&pool->lock);
    unsigned from = order;
    while (from <= MAX_ORDER && !pool->free_lists[from])
        from++;
    if (from > MAX_ORDER) {
        from = order > pool->arena_order ? order : pool->arena_order;
        if (!add_arena(pool, from)) {
            os_unlock(&pool->lock);
            return NULL;
        }
    }
    uintptr_t addr = (uintptr_t)pool->free_lists[from];
    struct pool_arena *arena = &pool->arenas[arena_index(pool, addr)];
    unlink_free(pool, addr, from);
    while (from > order) {
        from--;
        push_free(pool, arena, addr + ((uintptr_t)1 << from), from);
    }
    *unit_of(arena, addr) = (uint8_t)order;
    pool->in_use += (size_t)1 << order;
    os_unlock(&pool->lock);
    return (void *)addr;
}

void pool_free(struct pool *pool, void *ptr)
{
    uintptr_t addr = (uintptr_t)ptr;
    if (!ptr)
        return;
    os_lock(&pool->lock);
    int i = arena_index(pool, addr);
    struct pool_arena *arena = i < 0 ? NULL : &pool->arenas[i];
    unsigned order = arena ? live_order(arena, addr) : 0;
    if (!order) {             /* not a live block start: the pool is internal, just ignore */
        os_unlock(&pool->lock);
        return;
    }
    pool->in_use -= (size_t)1 << order;
    wipe(addr, order);
    *unit_of(arena, addr) = 0;
    while (order < arena->order) {
        uintptr_t buddy = arena->base + ((addr - arena->base) ^ ((uintptr_t)1 << order));
        if (*unit_of(arena, buddy) != (order | BLOCK_FREE))
            break;
        unlink_free(pool, buddy, order);
        *unit_of(arena, buddy) = 0;
        addr = addr < buddy ? addr : buddy;
        order++;
    }
    push_free(pool, arena, addr, order);
    os_unlock(&pool->lock);
}

size_t pool_block_size(struct pool *pool, const void *ptr)
{
    uintptr_t addr = (uintptr_t)ptr;
    os_lock(&pool->lock);
    int i = arena_index(pool, addr);
    unsigned order = i < 0 ? 0 : live_order(&pool->arenas[i], addr);
    os_unlock(&pool->lock);
    return order ? (size_t)1 << order : 0;
}

bool pool_owns(const struct pool *pool, const void *addr)
{
    return arena_index(pool, (uintptr_t)addr) >= 0;
}

void pool_for_each_arena(const struct pool *pool,
                         void (*fn)(uintptr_t start, size_t len, void *ctx), void *ctx)
{
    unsigned n = __atomic_load_n(&pool->narenas, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < n; i++)
        fn(pool->arenas[i].base, (size_t)1 << pool->arenas[i].order, ctx);
}

void pool_fork_prepare(struct pool *pool)
{
    os_lock(&pool->lock);
}

void pool_fork_parent(struct pool *pool)
{
    os_unlock(&pool->lock);
}

/* The child has one thread; whoever held the lock at fork() no longer exists there. */
void pool_fork_child(struct pool *pool)
{
    os_lock_reset(&pool->lock);
}
