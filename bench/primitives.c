/* primitives.c — white-box timings of the runtime's hot primitives, linked against the
 * runtime core objects (src/*.c, the same code libmemtrace.so is built from; run.py links
 * the objects of the CMake build, or compiles src/*.c with the same flags).
 *
 *   primitives [SCALE]
 *
 * Prints one `name=ns_per_op` line per primitive:
 *   capture_shallow  stacks_capture(24) of an already-interned stack ~6 frames deep
 *   capture_deep     stacks_capture(24) of an already-interned stack 40 frames deep
 *                    (repeated from one call site: the unwind cache's hit, which checks
 *                    the return-address slots instead of unwinding)
 *   intern_new       stacks_intern of a stack of 24 PCs never seen before (hash, record, CAS)
 *   intern_hit       stacks_intern of a 24-PC stack that is already there
 *   blocks_insert    blocks_insert into a table that grows to 1M blocks
 *   blocks_find      blocks_find of a random live block among 1M
 *   blocks_release   blocks_release (what free() does to the table: find, backward-shift
 *                    delete; without the pattern fill, which touches the block itself)
 * This depends on the internal API (stacks.h, blocks.h, pool.h): when that changes, the
 * build fails and run.py reports the white-box rows as "n/a".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "blocks.h"
#include "pool.h"
#include "stacks.h"

static struct pool pool;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static volatile uint32_t sink;

__attribute__((noinline)) static void capture_loop(long n, uint64_t *ns)
{
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++)
        sink += stacks_capture(24);
    *ns = now_ns() - t0;
}

__attribute__((noinline)) static void descend(int depth, long n, uint64_t *ns)
{
    if (depth <= 0)
        capture_loop(n, ns);
    else
        descend(depth - 1, n, ns);
    __asm__ volatile("" : : "r"(ns) : "memory");
}

int main(int argc, char **argv)
{
    long scale = argc > 1 ? atol(argv[1]) : 1;
    if (scale < 1)
        scale = 1;
    pool_init(&pool, 26, 0);
    if (!stacks_init(&pool, 0, 0) || !blocks_init(&pool)) {
        fprintf(stderr, "primitives: init failed\n");
        return 1;
    }
    if (!stacks_load_unwinder()) {
        fprintf(stderr, "primitives: cannot load libunwind.so.8\n");
        return 1;
    }
    uint64_t ns;
    long n = 200000 * scale;

    descend(0, 1000, &ns);                           /* warm up: unwinder caches */
    descend(0, n, &ns);
    printf("capture_shallow=%.2f\n", (double)ns / n);
    descend(34, 1000, &ns);
    descend(34, n, &ns);
    printf("capture_deep=%.2f\n", (double)ns / n);

    /* Synthetic 24-PC stacks: a shared base (the program's main and libc) under distinct
     * top frames, as real call sites give. */
    enum { DEPTH = 24 };
    long distinct = 100000 * scale;
    if (distinct > 500000)
        distinct = 500000;
    uintptr_t pcs[DEPTH];
    for (int d = 0; d < DEPTH; d++)
        pcs[d] = 0x400000 + (uintptr_t)d * 0x1234;
    uint64_t t0 = now_ns();
    for (long i = 0; i < distinct; i++) {
        pcs[0] = 0x500000 + (uintptr_t)i * 16;
        pcs[1] = 0x600000 + (uintptr_t)(i % 977) * 16;
        sink += stacks_intern(pcs, DEPTH);
    }
    printf("intern_new=%.2f\n", (double)(now_ns() - t0) / distinct);
    t0 = now_ns();
    for (long i = 0; i < n; i++) {
        long k = (long)(next_rand() % (uint64_t)distinct);
        pcs[0] = 0x500000 + (uintptr_t)k * 16;
        pcs[1] = 0x600000 + (uintptr_t)(k % 977) * 16;
        sink += stacks_intern(pcs, DEPTH);
    }
    printf("intern_hit=%.2f\n", (double)(now_ns() - t0) / n);

    /* The block table with 1M live blocks at heap-like addresses. */
    long nblocks = 1000000;
    uintptr_t base = 0x55550000000ull;
    t0 = now_ns();
    for (long i = 0; i < nblocks; i++) {
        struct block b = {.addr = base + (uintptr_t)i * 48, .size = 32, .alloc_stack = 1,
                          .tid = 1, .kind = ALLOC_MALLOC, .state = BLOCK_LIVE};
        if (!blocks_insert(&b)) {
            fprintf(stderr, "primitives: blocks_insert failed\n");
            return 1;
        }
    }
    printf("blocks_insert=%.2f\n", (double)(now_ns() - t0) / nblocks);

    long lookups = 1000000 * scale;
    struct block out;
    t0 = now_ns();
    for (long i = 0; i < lookups; i++)
        sink += blocks_find(base + (next_rand() % (uint64_t)nblocks) * 48, &out);
    printf("blocks_find=%.2f\n", (double)(now_ns() - t0) / lookups);

    /* free(): release every block once, in random-ish order (a stride walk). */
    t0 = now_ns();
    for (long i = 0; i < nblocks; i++) {
        long k = (i * 7919) % nblocks;
        sink += blocks_release(base + (uintptr_t)k * 48, &out);
    }
    printf("blocks_release=%.2f\n", (double)(now_ns() - t0) / nblocks);
    return 0;
}
