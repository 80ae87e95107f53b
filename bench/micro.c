/* micro.c — black-box microbenchmarks of the allocation entry points, timed inside the
 * process so start-up, exit scan and report are not counted (bench/run.py builds it).
 *
 *   micro pair|malloc|free DEPTH SIZE MIN_MS
 *
 * DEPTH extra frames are put on the stack before the loop (the stack a tool captures is
 * DEPTH + ~5 frames deep: main and libc's start-up below it).
 *   pair    malloc(SIZE) then free() of it, in a loop: ns per pair
 *   malloc  malloc(SIZE) of a batch of blocks (freed untimed): ns per malloc
 *   free    free() of a batch of blocks (allocated untimed), in allocation order: ns per free
 * Runs batches until MIN_MS milliseconds of timed work are done. Prints one line:
 *   micro: test=T depth=D size=S ops=N ns_per_op=X
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 10000

static void *batch[BATCH];

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Keeps the compiler from pairing up or removing malloc/free. */
static inline void escape(void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

struct run {
    const char *test;
    size_t size;
    uint64_t min_ns;
    uint64_t ops, ns;
};

__attribute__((noinline)) static void run_tests(struct run *r)
{
    uint64_t spent = 0, ops = 0;
    if (strcmp(r->test, "pair") == 0) {
        while (spent < r->min_ns) {
            uint64_t t0 = now_ns();
            for (int i = 0; i < BATCH; i++) {
                void *p = malloc(r->size);
                escape(p);
                free(p);
            }
            spent += now_ns() - t0;
            ops += BATCH;
        }
    } else if (strcmp(r->test, "malloc") == 0) {
        while (spent < r->min_ns) {
            uint64_t t0 = now_ns();
            for (int i = 0; i < BATCH; i++) {
                batch[i] = malloc(r->size);
                escape(batch[i]);
            }
            spent += now_ns() - t0;
            ops += BATCH;
            for (int i = 0; i < BATCH; i++)
                free(batch[i]);
        }
    } else {
        while (spent < r->min_ns) {
            for (int i = 0; i < BATCH; i++) {
                batch[i] = malloc(r->size);
                escape(batch[i]);
            }
            uint64_t t0 = now_ns();
            for (int i = 0; i < BATCH; i++)
                free(batch[i]);
            spent += now_ns() - t0;
            ops += BATCH;
        }
    }
    r->ops = ops;
    r->ns = spent;
}

/* Recursion that the compiler cannot turn into a loop: each level adds one real frame. */
__attribute__((noinline)) static void descend(int depth, struct run *r)
{
    if (depth <= 0)
        run_tests(r);
    else
        descend(depth - 1, r);
    escape(r);
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: micro pair|malloc|free DEPTH SIZE MIN_MS\n");
        return 2;
    }
    struct run r = {.test = argv[1], .size = (size_t)atol(argv[3]),
                    .min_ns = (uint64_t)atol(argv[4]) * 1000000ull};
    int depth = atoi(argv[2]);
    descend(depth, &r);
    printf("micro: test=%s depth=%d size=%zu ops=%llu ns_per_op=%.2f\n", r.test, depth, r.size,
           (unsigned long long)r.ops, r.ops ? (double)r.ns / (double)r.ops : 0.0);
    return 0;
}
