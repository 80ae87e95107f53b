/* test_slab.c — the slots under small redzoned blocks: every class's slot size found
 * from any address in the slot, slots distinct and writable, a freed slot handed out
 * again first, slots freed by one thread (and flushed as it ends) reused by another
 * before any new slot is carved, the reservation's overlap test, and RLIMIT_AS set after
 * the reservation bounding what the slab makes writable. */
#include "check.h"
#include "slab.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUND 20000

static void test_every_class(void)
{
    for (size_t size = SLAB_MIN_SLOT; size <= SLAB_MAX_SLOT; size += SLAB_SLOT_STEP) {
        unsigned char *a = slab_alloc(size), *b = slab_alloc(size);
        CHECK(a && b && a != b);
        if (!a || !b)
            continue;
        CHECK(slab_owns((uintptr_t)a) && ((uintptr_t)a & 15) == 0);
        CHECK(slab_slot_size((uintptr_t)a) == size && slab_slot_size((uintptr_t)a + size - 1) == size);
        CHECK(a + size <= b || b + size <= a);
        memset(a, 0xab, size);
        memset(b, 0xcd, size);
        CHECK(a[size - 1] == 0xab && b[0] == 0xcd);
        slab_free(b);
        CHECK(slab_alloc(size) == b);       /* the latest freed first: it is warm */
        slab_free(a);
        slab_free(b);
    }
}

static int compare_addresses(const void *x, const void *y)
{
    uintptr_t a = *(const uintptr_t *)x, b = *(const uintptr_t *)y;
    return a < b ? -1 : a > b;
}

static uintptr_t first_round[ROUND];

static void *free_all(void *unused)
{
    (void)unused;
    for (int i = 0; i < ROUND; i++)
        slab_free((void *)first_round[i]);
    slab_thread_exit();
    return NULL;
}

/* The slots one thread frees reach another through the central stacks; no slot is lost
 * in a dead thread's cache, and none is carved while freed ones wait. */
static void test_across_threads(void)
{
    const size_t size = 96;
    for (int i = 0; i < ROUND; i++)
        first_round[i] = (uintptr_t)slab_alloc(size);
    qsort(first_round, ROUND, sizeof first_round[0], compare_addresses);
    int overlapping = 0;
    for (int i = 1; i < ROUND; i++)
        overlapping += first_round[i - 1] + size > first_round[i];
    CHECK(first_round[0] != 0 && overlapping == 0);

    pthread_t freer;
    CHECK(pthread_create(&freer, NULL, free_all, NULL) == 0);
    pthread_join(freer, NULL);
    int reused = 0;
    for (int i = 0; i < ROUND; i++) {
        uintptr_t p = (uintptr_t)slab_alloc(size);
        reused += bsearch(&p, first_round, ROUND, sizeof p, compare_addresses) != NULL;
    }
    CHECK(ROUND - reused < 64);   /* at most the rest of the last batch carved for this thread */
}

static void test_overlaps(void)
{
    CHECK(slab_overlaps(slab_range.lo, slab_range.lo + 1));
    CHECK(slab_overlaps(slab_range.lo - 4096, slab_range.hi + 4096));
    CHECK(!slab_overlaps(slab_range.lo - 4096, slab_range.lo));
    CHECK(!slab_overlaps(slab_range.hi, slab_range.hi + 4096));
}

static size_t address_space_now(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f) {
        if (fscanf(f, "%lu", &pages) != 1)
            pages = 0;
        fclose(f);
    }
    return pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* In a child: with RLIMIT_AS at the address space now and 8 MiB, one class runs out
 * after about 8 MiB of slots (a whole 1 MiB step more at most), long before its region. */
static void test_address_limit(void)
{
    const size_t size = 64, headroom = 8u << 20;
    pid_t pid = fork();
    if (pid == 0) {
        size_t now = address_space_now();
        struct rlimit limit = {now + headroom, now + headroom};
        if (now == 0 || setrlimit(RLIMIT_AS, &limit) != 0)
            _exit(2);
        size_t made = 0;
        while (slab_alloc(size) && made <= 4 * headroom)
            made += size;
        _exit(made >= headroom - (2u << 20) && made <= headroom + (1u << 20) ? 0 : 1);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void)
{
    CHECK(slab_init());
    if (slab_range.lo == slab_range.hi)
        return CHECK_DONE("test_slab");
    test_every_class();
    test_across_threads();
    test_overlaps();
    test_address_limit();
    return CHECK_DONE("test_slab");
}
