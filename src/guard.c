/* guard.c — the guarded pool (see guard.h). */
#include "guard.h"

#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "blocks.h"
#include "os.h"

#define DEFAULT_MAX_MAP_COUNT 65530   /* Debian's default, when /proc cannot be read */
#define NEIGHBOUR_SEARCH 16           /* slots looked at on each side of a stray address */
#define TRYLOCK_SPINS 1000

/* KFENCE's canary: a byte that depends on the low address bits, so a shifted copy of the
 * slack does not pass for it. The word is 8 such bytes at an 8-aligned address. */
#define CANARY_BYTE(addr) ((uint8_t)(0xaa ^ ((addr) & 7)))
#define CANARY_WORD 0xadacafaea9a8abaaull

enum slot_state {
    SLOT_UNUSED,      /* never handed out */
    SLOT_ALLOCATING,  /* taken by guard_alloc; still describes its previous block */
    SLOT_LIVE,
    SLOT_FREEING,     /* taken by guard_free: canary check and mprotect under way */
    SLOT_FREED,       /* quarantined (or retired) */
};

struct guard_slot {
    uintptr_t block;  /* 0 until first used */
    size_t size;
    uint32_t alloc_stack, free_stack;
    pid_t alloc_tid, free_tid;
    uint8_t state;    /* enum slot_state: changed under the lock, read lock-free by describe */
    int8_t alloc_kind, free_kind;
    uint8_t retired;  /* a page of it was opened after a fault: never reused */
    uint8_t reported; /* a fault in it was reported */
};

static struct {
    struct spinlock lock;
    uintptr_t base;               /* 0 until guard_init succeeded; read lock-free */
    size_t total;                 /* leading guard page + slot_count * stride */
    size_t page, slot_bytes, stride, slot_count;
    enum guard_side side;
    bool align16;
    bool keep_freed_pages;        /* a freed block's contents must stay readable */
    struct guard_slot *slots;
    uint32_t *quarantine;         /* ring of freed slots, oldest at q_head */
    size_t q_head, q_tail;        /* running counters; the ring index is counter % slot_count */
    size_t next_unused;           /* never-used slots go first, in address order */
    size_t live, live_limit;
    uint64_t allocs, frees, refused_budget, refused_no_slot, retired;
    uint64_t cost_ns;             /* opening and closing slots' pages, first touch included */
} g;

/* ----------------------------------------------------------------------------------
 * Layout
 * -------------------------------------------------------------------------------- */

static uintptr_t slot_data(size_t slot)
{
    return g.base + g.page + slot * g.stride;
}

/* Where addr (inside the pool) falls: in the data pages of *slot (true), or in the guard
 * page just before *slot (false; *slot == slot_count for the last guard). */
static bool locate(uintptr_t addr, size_t *slot)
{
    size_t offset = addr - g.base;
    *slot = offset / g.stride;
    return offset % g.stride >= g.page;
}

/* The pages a block is given: an empty block still gets the page it points into. */
static void block_pages(uintptr_t block, size_t size, uintptr_t *lo, uintptr_t *hi)
{
    *lo = block & ~(uintptr_t)(g.page - 1);
    *hi = (block + (size ? size : 1) + g.page - 1) & ~(uintptr_t)(g.page - 1);
}

/* A size's natural alignment — its largest power-of-two divisor, at most malloc's 16 — but
 * at least 4 for blocks of 16 bytes or more, and 8 for those whose size is not a multiple
 * of 4. An odd size does not make an object free of alignment needs: a struct with
 * trailing bytes (CPython's strings) holds pointers, and programs keep tags in pointers'
 * low bits. A size that is 4 more than a multiple of 8 is an array of ints or floats, or a
 * header with 4-byte fields: placed 4-aligned, `new int[5]` ends at the guard. Below 16
 * bytes (short strings, small arrays) the natural placement stays, so `malloc(13)` still
 * ends exactly at the guard. */
static size_t natural_alignment(size_t size)
{
    size_t a = size & -size;
    if (a == 0 || a > 16)
        return 16;
    if (size >= 16 && a < 4)
        return 8;
    return a;
}

static uintptr_t place(uintptr_t data, size_t size, size_t align, enum guard_side side,
                       bool align16)
{
    if (side == GUARD_SIDE_UNDERFLOW)
        return data;                  /* page-aligned: honours any align up to a page */
    size_t a = align16 ? 16 : natural_alignment(size);
    if (align > a)
        a = align;
    return (data + g.slot_bytes - (size ? size : 1)) & ~(uintptr_t)(a - 1);
}

/* ----------------------------------------------------------------------------------
 * Canary
 * -------------------------------------------------------------------------------- */

static void canary_fill(uintptr_t lo, uintptr_t hi)
{
    const uint64_t word = CANARY_WORD;
    for (; lo < hi && (lo & 7); lo++)
        *(uint8_t *)lo = CANARY_BYTE(lo);
    for (; hi - lo >= 8; lo += 8)
        memcpy((void *)lo, &word, 8);
    for (; lo < hi; lo++)
        *(uint8_t *)lo = CANARY_BYTE(lo);
}

/* The first byte of [lo, hi) that is not the canary, or the last one with `last`; 0 if none. */
static uintptr_t canary_find_bad(uintptr_t lo, uintptr_t hi, bool last)
{
    uintptr_t bad = 0;
    while (lo < hi) {
        uint64_t word;
        if (!(lo & 7) && hi - lo >= 8) {
            memcpy(&word, (const void *)lo, 8);
            if (word == CANARY_WORD) {
                lo += 8;
                continue;
            }
        }
        if (*(const uint8_t *)lo != CANARY_BYTE(lo)) {
            bad = lo;
            if (!last)
                return bad;
        }
        lo++;
    }
    return bad;
}

/* Where the zeroed cookie before a scalar new block starts in its slack (blocks.h), or the
 * block itself when it has none (other kinds, or no room: the underflow side). */
static uintptr_t cookie_start(uintptr_t block, uintptr_t lo, int alloc_kind)
{
    return alloc_kind == ALLOC_NEW && block - lo >= ARRAY_COOKIE_SIZE ? block - ARRAY_COOKIE_SIZE : block;
}

/* The last byte of [lo, hi) that is not zero, or 0. */
static uintptr_t last_nonzero(uintptr_t lo, uintptr_t hi)
{
    for (; hi > lo; hi--)
        if (*(const uint8_t *)(hi - 1) != 0)
            return hi - 1;
    return 0;
}

/* The slack of a block whose pages are accessible. Reports the overwritten byte nearest
 * the block: the first after its end, else the last before its start. */
static bool canary_intact(const struct guard_slot *s, struct guard_info *info)
{
    uintptr_t lo, hi, bad;
    block_pages(s->block, s->size, &lo, &hi);
    uintptr_t cookie = cookie_start(s->block, lo, s->alloc_kind);
    if ((bad = canary_find_bad(s->block + s->size, hi, false)) != 0)
        info->access = GUARD_ACCESS_OVERFLOW;
    else if ((bad = last_nonzero(cookie, s->block)) != 0 || (bad = canary_find_bad(lo, cookie, true)) != 0)
        info->access = GUARD_ACCESS_UNDERFLOW;
    info->bad_addr = bad;
    return bad == 0;
}

/* ----------------------------------------------------------------------------------
 * Slot bookkeeping (under the lock unless said otherwise)
 * -------------------------------------------------------------------------------- */

static void info_clear(struct guard_info *info)
{
    memset(info, 0, sizeof *info);
    info->alloc_kind = info->free_kind = -1;
}

/* Also called lock-free by guard_describe: the fields may then be mid-update. */
static void info_fill(size_t slot, const struct guard_slot *s, struct guard_info *info)
{
    uint8_t state = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
    info->slot = slot;
    info->block = s->block;
    info->size = s->size;
    info->alloc_stack = s->alloc_stack;
    info->alloc_kind = s->alloc_kind;
    info->alloc_tid = s->alloc_tid;
    if (state == SLOT_LIVE)
        info->state = GUARD_BLOCK_LIVE;
    else if (state != SLOT_UNUSED && s->block != 0)   /* freeing, freed, or being reused */
        info->state = GUARD_BLOCK_FREED;
    else
        info->state = GUARD_BLOCK_NONE;
    if (info->state == GUARD_BLOCK_FREED) {
        info->free_stack = s->free_stack;
        info->free_kind = s->free_kind;
        info->free_tid = s->free_tid;
    }
}

static void set_state(struct guard_slot *s, enum slot_state state)
{
    __atomic_store_n(&s->state, (uint8_t)state, __ATOMIC_RELEASE);
}

static bool is_retired(size_t slot)
{
    return __atomic_load_n(&g.slots[slot].retired, __ATOMIC_RELAXED);
}

static void quarantine_push(size_t slot)
{
    g.quarantine[g.q_tail++ % g.slot_count] = (uint32_t)slot;
}

/* Also called without the lock, so the counters are atomic. */
static bool refuse_when_full(void)
{
    if (__atomic_load_n(&g.live, __ATOMIC_RELAXED) < g.live_limit)
        return false;
    /* With the limit at the slot count, full means every slot is live. */
    __atomic_fetch_add(g.live_limit < g.slot_count ? &g.refused_budget : &g.refused_no_slot, 1,
                       __ATOMIC_RELAXED);
    return true;
}

static bool take_slot(size_t *out)
{
    size_t slot;
    if (refuse_when_full())
        return false;
    if (g.next_unused < g.slot_count) {
        slot = g.next_unused++;
    } else {
        do {
            if (g.q_head == g.q_tail) {
                __atomic_fetch_add(&g.refused_no_slot, 1, __ATOMIC_RELAXED);
                return false;
            }
            slot = g.quarantine[g.q_head++ % g.slot_count];
        } while (is_retired(slot));
    }
    set_state(&g.slots[slot], SLOT_ALLOCATING);
    __atomic_fetch_add(&g.live, 1, __ATOMIC_RELAXED);
    *out = slot;
    return true;
}

/* mprotect refused (the map count, most likely): the slot goes back as it was. */
static void give_back(size_t slot)
{
    struct guard_slot *s = &g.slots[slot];
    os_lock(&g.lock);
    set_state(s, s->block ? SLOT_FREED : SLOT_UNUSED);
    quarantine_push(slot);
    __atomic_fetch_sub(&g.live, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&g.refused_budget, 1, __ATOMIC_RELAXED);
    os_unlock(&g.lock);
}

/* ----------------------------------------------------------------------------------
 * Public interface
 * -------------------------------------------------------------------------------- */

static size_t read_max_map_count(void)
{
    size_t value = os_read_number("/proc/sys/vm/max_map_count");
    return value ? value : DEFAULT_MAX_MAP_COUNT;
}

bool guard_init(struct pool *pool, size_t slot_count, size_t max_block_size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t slot_bytes = (max_block_size + page - 1) & ~(page - 1);
    size_t stride = slot_bytes + page, total;

    if (slot_count == 0 || slot_count > UINT32_MAX || max_block_size == 0 ||
        __builtin_mul_overflow(slot_count, stride, &total) ||
        __builtin_add_overflow(total, page, &total))
        return false;
    struct guard_slot *slots = pool_alloc(pool, slot_count * sizeof *slots);
    uint32_t *quarantine = pool_alloc(pool, slot_count * sizeof *quarantine);
    void *base = MAP_FAILED;
    if (slots && quarantine)
        base = os_mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
        pool_free(pool, slots);
        pool_free(pool, quarantine);
        return false;
    }
    size_t max_live = read_max_map_count() / 4;   /* 2 mappings per live slot: half the count */

    os_lock(&g.lock);
    uintptr_t old_base = __atomic_exchange_n(&g.base, 0, __ATOMIC_ACQ_REL);
    if (old_base)
        os_munmap((void *)old_base, g.total);
    g.total = total;
    g.page = page;
    g.slot_bytes = slot_bytes;
    g.stride = stride;
    g.slot_count = slot_count;
    g.slots = slots;
    g.quarantine = quarantine;
    g.q_head = g.q_tail = g.next_unused = g.live = 0;
    g.live_limit = slot_count < max_live ? slot_count : max_live;
    g.allocs = g.frees = g.refused_budget = g.refused_no_slot = g.retired = g.cost_ns = 0;
    __atomic_store_n(&g.base, (uintptr_t)base, __ATOMIC_RELEASE);
    os_unlock(&g.lock);
    return true;
}

void guard_layout(uintptr_t *first, size_t *stride, size_t *count)
{
    *first = slot_data(0);
    *stride = g.stride;
    *count = g.slot_count;
}

void guard_set_placement(enum guard_side side, bool always_align16)
{
    os_lock(&g.lock);
    g.side = side;
    g.align16 = always_align16;
    os_unlock(&g.lock);
}

void guard_set_keep_freed_pages(bool keep)
{
    __atomic_store_n(&g.keep_freed_pages, keep, __ATOMIC_RELAXED);
}

void guard_set_live_limit(size_t limit)
{
    os_lock(&g.lock);
    g.live_limit = limit < g.slot_count ? limit : g.slot_count;
    os_unlock(&g.lock);
}

bool guard_owns(uintptr_t addr)
{
    uintptr_t base = __atomic_load_n(&g.base, __ATOMIC_ACQUIRE);
    return base && addr - base < g.total;
}

bool guard_overlaps(uintptr_t lo, uintptr_t hi)
{
    uintptr_t base = __atomic_load_n(&g.base, __ATOMIC_ACQUIRE);
    return base && lo < base + g.total && base < hi;
}

void *guard_alloc(size_t size, size_t align, uint32_t alloc_stack, int alloc_kind, pid_t tid)
{
    size_t slot;
    uintptr_t lo, hi;

    if (!__atomic_load_n(&g.base, __ATOMIC_ACQUIRE) || size > g.slot_bytes || align > g.page ||
        (align & (align - 1)))
        return NULL;
    /* A program with more live blocks than slots pays a load here, not a contended lock. */
    if (refuse_when_full())
        return NULL;
    os_lock(&g.lock);
    bool taken = take_slot(&slot);
    enum guard_side side = g.side;
    bool align16 = g.align16;
    os_unlock(&g.lock);
    if (!taken)
        return NULL;

    /* The slot is ours alone now: the syscall and the fills run without the lock. */
    uintptr_t block = place(slot_data(slot), size, align, side, align16);
    block_pages(block, size, &lo, &hi);
    uint64_t start = os_clock_ns(CLOCK_THREAD_CPUTIME_ID);
    if (os_mprotect((void *)lo, hi - lo, PROT_READ | PROT_WRITE) != 0) {
        give_back(slot);
        return NULL;
    }
    memset((void *)block, 0, size);   /* a reused slot still holds the previous block */
    uintptr_t cookie = cookie_start(block, lo, alloc_kind);
    canary_fill(lo, cookie);
    memset((void *)cookie, 0, block - cookie);
    canary_fill(block + size, hi);
    __atomic_fetch_add(&g.cost_ns, os_clock_ns(CLOCK_THREAD_CPUTIME_ID) - start, __ATOMIC_RELAXED);

    struct guard_slot *s = &g.slots[slot];
    os_lock(&g.lock);
    s->block = block;
    s->size = size;
    s->alloc_stack = alloc_stack;
    s->alloc_kind = (int8_t)alloc_kind;
    s->alloc_tid = tid;
    s->free_stack = 0;
    s->free_kind = -1;
    s->free_tid = 0;
    s->reported = 0;
    set_state(s, SLOT_LIVE);
    g.allocs++;
    os_unlock(&g.lock);
    return (void *)block;
}

/* Makes a freed block's pages PROT_NONE. Quarantined pages are never read again (unless
 * --continue-after-fault opens one, or --free-fill wants its pattern kept), so they are
 * also given back (kept, they made up most of the peak-RSS growth on python3, 27 of 40 MB):
 * by mapping fresh PROT_NONE pages over them, one syscall and one TLB flush where
 * mprotect and madvise took two of each (5% of a run with 8 threads). Should both ways
 * fail, the pages stay accessible: later use-after-free goes unseen, no more. */
static void close_freed_pages(uintptr_t lo, uintptr_t hi)
{
    uint64_t start = os_clock_ns(CLOCK_THREAD_CPUTIME_ID);
    if (__atomic_load_n(&g.keep_freed_pages, __ATOMIC_RELAXED) ||
        os_mmap((void *)lo, hi - lo, PROT_NONE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) != (void *)lo)
        os_mprotect((void *)lo, hi - lo, PROT_NONE);
    __atomic_fetch_add(&g.cost_ns, os_clock_ns(CLOCK_THREAD_CPUTIME_ID) - start, __ATOMIC_RELAXED);
}

enum guard_free_result guard_free(void *ptr, int free_kind, uint32_t free_stack, pid_t tid,
                                  struct guard_info *info)
{
    uintptr_t p = (uintptr_t)ptr, lo, hi;
    size_t slot;

    info_clear(info);
    if (!guard_owns(p))
        return GUARD_FREE_NOT_A_BLOCK_START;
    if (!locate(p, &slot)) {                  /* a guard page: say what is near */
        guard_describe(p, info);
        return GUARD_FREE_NOT_A_BLOCK_START;
    }
    struct guard_slot *s = &g.slots[slot];
    os_lock(&g.lock);
    bool mine = s->state == SLOT_LIVE && s->block == p;
    if (mine) {
        s->free_stack = free_stack;
        s->free_kind = (int8_t)free_kind;
        s->free_tid = tid;
        set_state(s, SLOT_FREEING);
    }
    info_fill(slot, s, info);
    os_unlock(&g.lock);
    if (!mine)
        return info->state == GUARD_BLOCK_FREED && info->block == p ? GUARD_FREE_DOUBLE_FREE
                                                                       : GUARD_FREE_NOT_A_BLOCK_START;

    enum guard_free_result result = canary_intact(s, info) ? GUARD_FREE_OK : GUARD_FREE_CANARY_CORRUPT;
    block_pages(s->block, s->size, &lo, &hi);
    close_freed_pages(lo, hi);
    os_lock(&g.lock);
    set_state(s, SLOT_FREED);
    if (!is_retired(slot))
        quarantine_push(slot);
    __atomic_fetch_sub(&g.live, 1, __ATOMIC_RELAXED);
    g.frees++;
    os_unlock(&g.lock);
    return result;
}

/* The fault handler must never wait for the lock (its own thread may hold it); a bounded
 * spin still gets a consistent picture when another thread holds it for a moment. */
static bool trylock_briefly(void)
{
    for (int i = 0; i < TRYLOCK_SPINS; i++) {
        if (!__atomic_exchange_n(&g.lock.locked, 1, __ATOMIC_ACQUIRE))
            return true;
        __builtin_ia32_pause();
    }
    return false;
}

static bool has_block(const struct guard_slot *s)
{
    return __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != SLOT_UNUSED && s->block != 0;
}

static size_t distance_to_block(uintptr_t addr, const struct guard_slot *s)
{
    if (addr < s->block)
        return s->block - addr;
    return addr >= s->block + s->size ? addr - (s->block + s->size) : 0;
}

/* The slot whose block explains addr: the one addr lies in if it holds a block, else the
 * nearest block on either side (guard pages sit between two slots), live winning ties. */
static bool explaining_slot(uintptr_t addr, size_t *out)
{
    size_t here, best = SIZE_MAX;
    bool found = false, best_live = false;

    if (locate(addr, &here) && has_block(&g.slots[here])) {
        *out = here;
        return true;
    }
    size_t first = here > NEIGHBOUR_SEARCH ? here - NEIGHBOUR_SEARCH : 0;
    size_t last = here + NEIGHBOUR_SEARCH < g.slot_count ? here + NEIGHBOUR_SEARCH : g.slot_count - 1;
    for (size_t k = first; k <= last; k++) {
        const struct guard_slot *s = &g.slots[k];
        if (!has_block(s))
            continue;
        size_t d = distance_to_block(addr, s);
        bool live = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == SLOT_LIVE;
        if (d < best || (d == best && live && !best_live)) {
            best = d;
            best_live = live;
            *out = k;
            found = true;
        }
    }
    return found;
}

bool guard_describe(uintptr_t addr, struct guard_info *info)
{
    size_t slot;

    info_clear(info);
    if (!guard_owns(addr))
        return false;
    bool locked = trylock_briefly();
    if (explaining_slot(addr, &slot)) {
        info_fill(slot, &g.slots[slot], info);
        if (addr < info->block)
            info->access = GUARD_ACCESS_UNDERFLOW;
        else if (addr >= info->block + info->size)
            info->access = GUARD_ACCESS_OVERFLOW;
        else if (info->state == GUARD_BLOCK_FREED)
            info->access = GUARD_ACCESS_USE_AFTER_FREE;
    }
    if (locked)
        os_unlock(&g.lock);
    return true;
}

/* Under the lock: is p the start of a live block? */
static bool live_block_at(uintptr_t p, size_t *slot)
{
    return guard_owns(p) && locate(p, slot) && g.slots[*slot].state == SLOT_LIVE &&
           g.slots[*slot].block == p;
}

bool guard_find(const void *ptr, struct guard_info *info)
{
    size_t slot;
    info_clear(info);
    os_lock(&g.lock);
    bool found = live_block_at((uintptr_t)ptr, &slot);
    if (found)
        info_fill(slot, &g.slots[slot], info);
    os_unlock(&g.lock);
    return found;
}

size_t guard_usable_size(const void *ptr)
{
    struct guard_info info;
    return guard_find(ptr, &info) ? info.size : 0;
}

/* Holds the lock throughout: a concurrent free cannot take the pages away mid-check. */
bool guard_check(const void *ptr, struct guard_info *info)
{
    size_t slot;
    bool intact = true;
    info_clear(info);
    os_lock(&g.lock);
    if (live_block_at((uintptr_t)ptr, &slot)) {
        info_fill(slot, &g.slots[slot], info);
        intact = canary_intact(&g.slots[slot], info);
    }
    os_unlock(&g.lock);
    return intact;
}

void guard_for_each_live(void (*fn)(const struct guard_info *info, void *ctx), void *ctx)
{
    struct guard_info info;
    if (!__atomic_load_n(&g.base, __ATOMIC_ACQUIRE))
        return;
    for (size_t slot = 0; slot < g.next_unused; slot++) {
        if (g.slots[slot].state != SLOT_LIVE)
            continue;
        info_clear(&info);
        info_fill(slot, &g.slots[slot], &info);
        fn(&info, ctx);
    }
}

bool guard_claim_report(size_t slot)
{
    return __atomic_load_n(&g.base, __ATOMIC_ACQUIRE) && slot < g.slot_count &&
           !__atomic_exchange_n(&g.slots[slot].reported, 1, __ATOMIC_ACQ_REL);
}

static void retire(size_t slot)
{
    if (slot < g.slot_count && !__atomic_exchange_n(&g.slots[slot].retired, 1, __ATOMIC_ACQ_REL))
        __atomic_fetch_add(&g.retired, 1, __ATOMIC_RELAXED);
}

bool guard_open_page(uintptr_t addr)
{
    size_t slot;
    if (!guard_owns(addr))
        return false;
    if (locate(addr, &slot)) {
        retire(slot);
    } else {                       /* a guard page fences the slots on both its sides */
        if (slot > 0)
            retire(slot - 1);
        retire(slot);
    }
    uintptr_t page = addr & ~(uintptr_t)(g.page - 1);
    return os_mprotect((void *)page, g.page, PROT_READ | PROT_WRITE) == 0;
}

uint64_t guard_cost_ns(void)
{
    return __atomic_load_n(&g.cost_ns, __ATOMIC_RELAXED);
}

void guard_get_stats(struct guard_stats *out)
{
    os_lock(&g.lock);
    out->allocs = g.allocs;
    out->frees = g.frees;
    out->live = g.live;
    out->live_limit = g.live_limit;
    out->refused_budget = __atomic_load_n(&g.refused_budget, __ATOMIC_RELAXED);
    out->refused_no_slot = __atomic_load_n(&g.refused_no_slot, __ATOMIC_RELAXED);
    out->retired = __atomic_load_n(&g.retired, __ATOMIC_RELAXED);
    os_unlock(&g.lock);
}

void guard_lock(void)
{
    os_lock(&g.lock);
}

void guard_unlock(void)
{
    os_unlock(&g.lock);
}

void guard_reset_lock(void)
{
    os_lock_reset(&g.lock);
}
