/* test_unwind_cache.c — a stack served from the per-thread unwind cache is the stack a
 * full unwind gives at that moment: call sites at the same depth (same sp, same memtrace
 * return address) stay apart, a changed outer frame is noticed, recursion at several
 * depths, frames whose size changes between the same return addresses, many call sites at
 * one depth all stay cached, and threads each get their own stacks. Each capture is checked against
 * unw_backtrace taken right beside it. */
#include "check.h"
#include "stacks.h"
#include "unwind_cache.h"

#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

typedef int (*backtrace_fn)(void **buffer, int size);

static struct pool pool;
static backtrace_fn reference_backtrace;
static size_t captures, mismatches;

/* The capture's frames from probe's caller outwards must equal a full unwind's. */
__attribute__((noinline)) static void probe(void)
{
    uint32_t id = stacks_capture(20);
    void *ref[24];
    int n = reference_backtrace(ref, 19);    /* ref[0] is in probe, ref[1] its caller */
    const struct stack_record *rec = stacks_get(id);
    captures++;
    /* Frame 0 is in stacks_capture, 1 in probe, 2 probe's caller. */
    bool same = rec && rec->depth >= 3 && rec->depth - 2 == n - 1;
    for (int i = 1; same && i < n; i++)
        same = stacks_frame(rec, i + 1) == (uintptr_t)ref[i];
    mismatches += !same;
}

__attribute__((noinline)) static void site_a(void) { probe(); __asm__ volatile(""); }
__attribute__((noinline)) static void site_b(void) { probe(); __asm__ volatile(""); }

__attribute__((noinline)) static void outer_x(int which) { which ? site_a() : site_b(); __asm__ volatile(""); }
__attribute__((noinline)) static void outer_y(int which) { which ? site_a() : site_b(); __asm__ volatile(""); }

__attribute__((noinline)) static void recurse(int depth, int which)
{
    if (depth == 0)
        (which & 2 ? outer_x : outer_y)(which & 1);
    else
        recurse(depth - 1, which);
    __asm__ volatile("");
}

__attribute__((noinline)) static void *mix_calls(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20000; i++)
        recurse(i % 5, (i * 7) % 4);
    return NULL;
}

static void test_cached_stacks_match_full_unwinds(void)
{
    uint32_t limit_before = 0;
    for (volatile int pass = 0; pass < 2; pass++) {    /* one call site: no unrolling */
        if (pass == 1)
            limit_before = stacks_id_limit();
        mix_calls(NULL);
    }
    CHECK(mismatches == 0 && captures == 40000);
    CHECK(stacks_id_limit() == limit_before);       /* the same stacks again */
    CHECK(limit_before >= 1 + 5 * 4);                /* 5 depths x 4 paths, kept apart */
}

/* A frame whose size changes from call to call (alloca) between the same return
 * addresses, with the caller that differs beyond it (past the frames compared exactly):
 * where its slot was last time is only a guess, and trusting it would take the same stack
 * for either caller. */
__attribute__((noinline)) static void padded(int pad)
{
    volatile char *room = __builtin_alloca((size_t)pad);
    room[0] = 0;
    recurse(4, 0);
    __asm__ volatile("");
}

__attribute__((noinline)) static void caller_x(int pad) { padded(pad); __asm__ volatile(""); }
__attribute__((noinline)) static void caller_y(int pad) { padded(pad); __asm__ volatile(""); }

static void test_frames_of_changing_size(void)
{
    mismatches = captures = 0;
    for (int i = 0; i < 20000; i++)
        (i % 2 ? caller_x : caller_y)(16 + (i / 2 % 3) * 48);
    CHECK(mismatches == 0 && captures == 20000);
}

/* Twelve call sites at one depth share (sp, ra) and everything above them: the cache
 * must tell them apart by the return address into them, not thrash three ways of one set
 * (python3 makes most of its calls at a few depths). */
#define SITE(n) __attribute__((noinline)) static void same_depth_##n(void) { probe(); __asm__ volatile(""); }
SITE(0) SITE(1) SITE(2) SITE(3) SITE(4) SITE(5) SITE(6) SITE(7) SITE(8) SITE(9) SITE(10) SITE(11)
static void (*const same_depth_sites[12])(void) = {
    same_depth_0, same_depth_1, same_depth_2, same_depth_3, same_depth_4, same_depth_5,
    same_depth_6, same_depth_7, same_depth_8, same_depth_9, same_depth_10, same_depth_11,
};

static void test_sites_at_one_depth_stay_cached(void)
{
    uint64_t hits0, misses0, hits, misses;
    mismatches = captures = 0;
    unwind_cache_counts(&hits0, &misses0);
    for (int i = 0; i < 1200; i++)
        same_depth_sites[i % 12]();
    unwind_cache_counts(&hits, &misses);
    CHECK(mismatches == 0 && captures == 1200);
    CHECK(hits + misses - hits0 - misses0 == 1200);
    CHECK(misses - misses0 < 60);                 /* first sightings, a few set collisions */
}

static void test_threads_each_have_their_own(void)
{
    pthread_t t[2];
    mismatches = 0;
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, mix_calls, NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    CHECK(mismatches == 0);
}

int main(void)
{
    pool_init(&pool, 24, 0);
    CHECK(stacks_init(&pool, 0, 0));
    CHECK(stacks_load_unwinder());
    void *lib = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
    CHECK(lib != NULL);
    reference_backtrace = lib ? (backtrace_fn)dlsym(lib, "unw_backtrace") : NULL;
    if (!reference_backtrace)
        return CHECK_DONE("test_unwind_cache");
    test_cached_stacks_match_full_unwinds();
    test_frames_of_changing_size();
    test_sites_at_one_depth_stay_cached();
    test_threads_each_have_their_own();
    return CHECK_DONE("test_unwind_cache");
}
