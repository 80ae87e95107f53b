/* unwind_cache.c — the per-thread cache of captured stacks (see unwind_cache.h). */
#include "unwind_cache.h"

#include <pthread.h>
#include <stdbool.h>
#include <unistd.h>

#include "os.h"
#include "pool.h"

/* Set-associative, by (sp, ra) and the program's innermost return address: ra is
 * memtrace's own, so calls from different sites at one depth share (sp, ra), and on
 * python3 most calls are made at a few depths (one set took 45% of the misses, its 3 ways
 * thrashing); the return address into the program tells the sites apart. The ways tell
 * the rest apart by their slots. */
#define SET_ORDER_MIN 7
#define SET_ORDER_MAX 9
#define WAYS 3
#define CACHE_FRAMES 30              /* return addresses checked: 24 callers + memtrace's 6 */
#define EXACT_FRAMES 4               /* the innermost ones, compared word by word */
#define FRAME_SCAN_MAX 65536         /* bytes searched past one slot for the next */
#define OFFSET_MAX ((1ul << 16) * sizeof(uintptr_t))  /* offsets are stored in words */
#define MAIN_STACK_MAX (64ul << 20)  /* below __libc_stack_end, still the main stack */

extern void *__libc_stack_end;

/* 128 bytes: the innermost return addresses as they were (where call sites at one depth
 * differ, so a wrong way fails fast) and a 64-bit hash of the outer ones. A thread starts
 * with 384 entries (48 KiB) and grows to 1536 when it keeps missing (python3's misses,
 * 92% of them stacks seen before: 587k with 384 entries, 326k with 768, 241k with 1536). */
struct cache_entry {
    uintptr_t sp, ra;
    uint32_t id;
    uint16_t max_depth, slots;
    uintptr_t inner_pc[EXACT_FRAMES];
    uint64_t outer_hash;
    uint16_t offset[CACHE_FRAMES];   /* (slot address - sp) / 8 */
};

/* Too big for static TLS, which glibc carves out of every thread's stack (a thread asking
 * for a 64 KiB stack would be refused with EINVAL). So each thread's cache comes from the
 * runtime pool on its first capture and goes back when the thread exits. */
/* Where the next return-address slot lies, learned per return address: a function's frame
 * has one size at a call site, so a miss finds most slots with one load each instead of
 * scanning every word of every frame in between (that scan was most of a miss's cost on
 * python3, whose evaluation frames are hundreds of bytes). */
#define FRAME_HINT_ORDER 8
struct frame_hint {
    uintptr_t pc;                    /* the return address below the slot */
    uint32_t words;                  /* from its slot (or sp) to the next slot */
};

struct entry_set {
    struct cache_entry ways[WAYS];
};

struct thread_cache {
    uintptr_t lo, hi;                /* this thread's stack; lo == hi: unknown, no caching */
    uint64_t hits, misses;
    uint64_t finds_at_resize, misses_at_resize;
    unsigned order;                  /* 1 << order sets */
    struct entry_set *sets;          /* from the pool, with the victim counters after them */
    uint8_t *next_victim;
    struct frame_hint hints[1u << FRAME_HINT_ORDER];
};

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
    if (mine && mine != CACHE_RETIRED) {
        pool_free(cache_pool, mine->sets);
        pool_free(cache_pool, mine);
    }
}

/* Empty sets for 1 << order of them (zero-filled: no entry holds); false without memory. */
static bool make_sets(struct thread_cache *c, unsigned order)
{
    size_t n = (size_t)1 << order;
    struct entry_set *sets = pool_alloc(cache_pool, n * sizeof *sets + n);
    if (!sets)
        return false;
    pool_free(cache_pool, c->sets);
    c->sets = sets;
    c->next_victim = (uint8_t *)(sets + n);
    c->order = order;
    c->finds_at_resize = c->hits + c->misses;
    c->misses_at_resize = c->misses;
    return true;
}

/* A cache that keeps missing (more than 1 find in 32 since it was made, over several times
 * its entries) doubles, up to SET_ORDER_MAX: most threads stay small. */
static void grow_when_missing(struct thread_cache *c)
{
    uint64_t misses = c->misses - c->misses_at_resize;
    uint64_t finds = c->hits + c->misses - c->finds_at_resize;
    if (c->order < SET_ORDER_MAX && misses > ((uint64_t)WAYS << c->order) * 8 && misses * 32 > finds)
        make_sets(c, c->order + 1);
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
    if (!make_sets(c, SET_ORDER_MIN)) {
        pool_free(cache_pool, c);
        return NULL;
    }
    read_stack_bounds(c);
    return cache = c;
}

bool unwind_cache_stack_bounds(uintptr_t *lo, uintptr_t *hi)
{
    const struct thread_cache *c = thread_cache();
    if (!c || c->lo >= c->hi)
        return false;
    *lo = c->lo;
    *hi = c->hi;
    return true;
}

/* Reads other frames' stack words on purpose. */
__attribute__((no_sanitize_address))
static uintptr_t stack_word(uintptr_t at)
{
    return *(const volatile uintptr_t *)at;
}

/* Where, above sp, the slot of the first return address into the program lies: memtrace's
 * frames up to the entry point are the same at every capture from ra, so it is learned
 * once (from the first stack stored) and shared by all threads. Where a capture reaches ra
 * another way the word read there is just another key: a different set, never a wrong
 * stack (an entry checks its slots). */
#define KEY_SLOT_ORDER 6
static uint64_t key_slots[1u << KEY_SLOT_ORDER];   /* ra << 16 | words above sp; 0: not learned */

static uint64_t *key_slot_of(uintptr_t ra)
{
    return &key_slots[(ra * 0x9e3779b97f4a7c15ull) >> (64 - KEY_SLOT_ORDER)];
}

static unsigned set_of(const struct thread_cache *c, uintptr_t sp, uintptr_t ra)
{
    uint64_t learned = __atomic_load_n(key_slot_of(ra), __ATOMIC_RELAXED);
    uintptr_t key = 0, at = sp + (learned & 0xffff) * sizeof(uintptr_t);
    if (learned >> 16 == ra && at < c->hi)
        key = stack_word(at);
    uint64_t h = (uint64_t)((sp >> 3) ^ ra ^ key * 0xc2b2ae3d27d4eb4full) * 0x9e3779b97f4a7c15ull;
    return (unsigned)(h >> (64 - c->order));
}

/* One word, set once: ra and its offset never come from two different learners. (A return
 * address above 47 bits, possible only with 5-level paging, is not keyed.) */
static void learn_key_slot(uintptr_t ra, uint16_t words)
{
    uint64_t unlearned = 0;
    if (ra >> 47)
        return;
    __atomic_compare_exchange_n(key_slot_of(ra), &unlearned, (uint64_t)ra << 16 | words, false,
                                __ATOMIC_RELAXED, __ATOMIC_RELAXED);
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
    const struct cache_entry *set = cache->sets[set_of(cache, sp, ra)].ways;
    for (int way = 0; way < WAYS; way++) {
        if (entry_holds(&set[way], sp, ra, max_depth)) {
            cache->hits++;
            return set[way].id;
        }
    }
    cache->misses++;
    return 0;
}

void unwind_cache_counts(uint64_t *hits, uint64_t *misses)
{
    bool mine = cache && cache != CACHE_RETIRED;
    *hits = mine ? cache->hits : 0;
    *misses = mine ? cache->misses : 0;
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
                        int key_frame, uint32_t id)
{
    struct thread_cache *c = thread_cache();
    if (!c || id == 0 || n < 2 || n - 1 > CACHE_FRAMES || sp < c->lo || sp >= c->hi ||
        (sp & (sizeof(uintptr_t) - 1)) || (uintptr_t)pcs[1] != ra)
        return;
    struct cache_entry fresh;
    if (!locate_slots(c, &fresh, sp, pcs, n))
        return;
    if (key_frame >= 1 && key_frame < n)
        learn_key_slot(ra, fresh.offset[key_frame - 1]);
    fresh.sp = sp;
    fresh.ra = ra;
    fresh.max_depth = (uint16_t)max_depth;
    fresh.slots = (uint16_t)(n - 1);
    fresh.outer_hash = hash_outer(&fresh, sp);
    fresh.id = id;
    grow_when_missing(c);
    unsigned set = set_of(c, sp, ra);
    c->sets[set].ways[c->next_victim[set]++ % WAYS] = fresh;
}
