/* unwind_cache.c — the per-thread cache of captured stacks (see unwind_cache.h). */
#include "unwind_cache.h"

#include <pthread.h>
#include <stdbool.h>
#include <unistd.h>

#include "os.h"
#include "pool.h"

/* Set-associative: calls from different sites at the same depth share (sp, ra), since
 * ra is memtrace's own; the ways tell them apart by their slots. */
#define SET_ORDER 7
#define WAYS 3
#define CACHE_FRAMES 30              /* return addresses checked: 24 callers + memtrace's 6 */
#define EXACT_FRAMES 4               /* the innermost ones, compared word by word */
#define FRAME_SCAN_MAX 65536         /* bytes searched past one slot for the next */
#define OFFSET_MAX ((1ul << 16) * sizeof(uintptr_t))  /* offsets are stored in words */
#define MAIN_STACK_MAX (64ul << 20)  /* below __libc_stack_end, still the main stack */

extern void *__libc_stack_end;

/* 128 bytes: the innermost return addresses as they were (where call sites at one depth
 * differ, so a wrong way fails fast) and a 64-bit hash of the outer ones, which keeps 384
 * entries in 48 KiB a thread (hits: 88% with 128 full-size entries, 97% with 512). */
struct cache_entry {
    uintptr_t sp, ra;
    uint32_t id;
    uint16_t max_depth, slots;
    uintptr_t inner_pc[EXACT_FRAMES];
    uint64_t outer_hash;
    uint16_t offset[CACHE_FRAMES];   /* (slot address - sp) / 8 */
};

/* 64 KiB: too big for static TLS, which glibc carves out of every thread's stack (a
 * thread asking for a 64 KiB stack would be refused with EINVAL). So each thread's cache
 * comes from the runtime pool on its first capture and goes back when the thread exits. */
/* Where the next return-address slot lies, learned per return address: a function's frame
 * has one size at a call site, so a miss finds most slots with one load each instead of
 * scanning every word of every frame in between (that scan was most of a miss's cost on
 * python3, whose evaluation frames are hundreds of bytes). */
#define FRAME_HINT_ORDER 8
struct frame_hint {
    uintptr_t pc;                    /* the return address below the slot */
    uint32_t words;                  /* from its slot (or sp) to the next slot */
};

struct thread_cache {
    uintptr_t lo, hi;                /* this thread's stack; lo == hi: unknown, no caching */
    uint8_t next_victim[1u << SET_ORDER];
    struct cache_entry sets[1u << SET_ORDER][WAYS];
    struct frame_hint hints[1u << FRAME_HINT_ORDER];
};
_Static_assert(sizeof(struct thread_cache) <= 64 * 1024, "a thread's cache is one 64 KiB pool block");

#define CACHE_RETIRED ((struct thread_cache *)1)   /* the thread is exiting: no more caching */

static struct pool *cache_pool;
static __thread struct thread_cache *cache __attribute__((tls_model("initial-exec")));

void unwind_cache_init(struct pool *pool)
{
    cache_pool = pool;
}

void unwind_cache_thread_exit(void)
{
    struct thread_cache *mine = cache;
    cache = CACHE_RETIRED;
    if (mine && mine != CACHE_RETIRED)
        pool_free(cache_pool, mine);
}

/* The main thread's stack ends at __libc_stack_end; another thread's is pthread's.
 * pthread_getattr_np may allocate: we run with the thread marked busy, so that goes to
 * the nested allocator. */
static void read_stack_bounds(struct thread_cache *c)
{
    if (os_gettid() == getpid()) {
        c->hi = (uintptr_t)__libc_stack_end;
        c->lo = c->hi > MAIN_STACK_MAX ? c->hi - MAIN_STACK_MAX : 0;
        return;
    }
    pthread_attr_t attr;
    void *addr;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return;
    if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
        c->lo = (uintptr_t)addr;
        c->hi = (uintptr_t)addr + size;
    }
    pthread_attr_destroy(&attr);
}

/* This thread's cache, made on first use; NULL when there is none to be had. */
static struct thread_cache *thread_cache(void)
{
    if (cache)
        return cache == CACHE_RETIRED ? NULL : cache;
    struct thread_cache *c = cache_pool ? pool_alloc(cache_pool, sizeof *c) : NULL;
    if (!c)
        return NULL;
    read_stack_bounds(c);
    return cache = c;
}

static unsigned set_of(uintptr_t sp, uintptr_t ra)
{
    uint64_t h = (uint64_t)((sp >> 3) ^ ra) * 0x9e3779b97f4a7c15ull;
    return (unsigned)(h >> (64 - SET_ORDER));
}

/* Reads other frames' stack words on purpose. */
__attribute__((no_sanitize_address))
static uintptr_t stack_word(uintptr_t at)
{
    return *(const volatile uintptr_t *)at;
}

/* The outer slots' contents, in order; two multiply lanes halve the dependency chain. */
static uint64_t hash_outer(const struct cache_entry *e, uintptr_t sp)
{
    uint64_t a = 0x9e3779b97f4a7c15ull, b = 0xc2b2ae3d27d4eb4full;
    unsigned i = EXACT_FRAMES;
    for (; i + 1 < e->slots; i += 2) {
        a = (a ^ stack_word(sp + e->offset[i] * sizeof(uintptr_t))) * 0xff51afd7ed558ccdull;
        b = (b ^ stack_word(sp + e->offset[i + 1] * sizeof(uintptr_t))) * 0xc4ceb9fe1a85ec53ull;
    }
    if (i < e->slots)
        a = (a ^ stack_word(sp + e->offset[i] * sizeof(uintptr_t))) * 0xff51afd7ed558ccdull;
    a ^= (b ^ (b >> 29)) * 0x9e3779b97f4a7c15ull;
    return a ^ (a >> 32);
}

static bool entry_holds(const struct cache_entry *e, uintptr_t sp, uintptr_t ra, int max_depth)
{
    if (e->id == 0 || e->sp != sp || e->ra != ra || e->max_depth != max_depth)
        return false;
    for (unsigned i = 0; i < e->slots && i < EXACT_FRAMES; i++)
        if (stack_word(sp + e->offset[i] * sizeof(uintptr_t)) != e->inner_pc[i])
            return false;
    return hash_outer(e, sp) == e->outer_hash;
}

uint32_t unwind_cache_find(uintptr_t sp, uintptr_t ra, int max_depth)
{
    if (!cache || cache == CACHE_RETIRED)
        return 0;
    const struct cache_entry *set = cache->sets[set_of(sp, ra)];
    for (int way = 0; way < WAYS; way++)
        if (entry_holds(&set[way], sp, ra, max_depth))
            return set[way].id;
    return 0;
}

static struct frame_hint *hint_of(struct thread_cache *c, uintptr_t pc)
{
    return &c->hints[(pc * 0x9e3779b97f4a7c15ull) >> (64 - FRAME_HINT_ORDER)];
}

/* Finds, in order going up the stack from sp, the slot holding each return address: where
 * the hint for the frame below says, else the first at or above the last one found. */
static bool locate_slots(struct thread_cache *c, struct cache_entry *e, uintptr_t sp,
                         void *const *pcs, int n)
{
    uintptr_t at = sp, below = sp;
    for (int i = 1; i < n; i++) {
        uintptr_t want = (uintptr_t)pcs[i];
        uintptr_t limit = c->hi - sizeof(uintptr_t);
        if (limit - at > FRAME_SCAN_MAX)
            limit = at + FRAME_SCAN_MAX;
        struct frame_hint *hint = hint_of(c, (uintptr_t)pcs[i - 1]);
        uintptr_t guess = below + hint->words * sizeof(uintptr_t);
        if (hint->pc == (uintptr_t)pcs[i - 1] && guess >= at && guess <= limit && stack_word(guess) == want)
            at = guess;
        while (at <= limit && stack_word(at) != want)
            at += sizeof(uintptr_t);
        if (at > limit || at - sp >= OFFSET_MAX)
            return false;
        *hint = (struct frame_hint){(uintptr_t)pcs[i - 1], (uint32_t)((at - below) / sizeof(uintptr_t))};
        below = at;
        e->offset[i - 1] = (uint16_t)((at - sp) / sizeof(uintptr_t));
        if (i - 1 < EXACT_FRAMES)
            e->inner_pc[i - 1] = want;
        at += sizeof(uintptr_t);
    }
    return true;
}

void unwind_cache_store(uintptr_t sp, uintptr_t ra, int max_depth, void *const *pcs, int n,
                        uint32_t id)
{
    struct thread_cache *c = thread_cache();
    if (!c || id == 0 || n < 2 || n - 1 > CACHE_FRAMES || sp < c->lo || sp >= c->hi ||
        (sp & (sizeof(uintptr_t) - 1)) || (uintptr_t)pcs[1] != ra)
        return;
    unsigned set = set_of(sp, ra);
    struct cache_entry *e = &c->sets[set][c->next_victim[set]++ % WAYS];
    e->id = 0;
    if (!locate_slots(c, e, sp, pcs, n))
        return;
    e->sp = sp;
    e->ra = ra;
    e->max_depth = (uint16_t)max_depth;
    e->slots = (uint16_t)(n - 1);
    e->outer_hash = hash_outer(e, sp);
    e->id = id;
}
