/* test_mappings.c — the table of the program's own mappings: exact removal and protection
 * through the start-address index, a region split by an mprotect of its head and then
 * unmapped whole, MAP_FIXED replacing what it covers, an unmap through the middle of a
 * region, a stale region at a reused start, and growth to many regions with deletions
 * in between (the index rebuilt on the way). */
#include "check.h"
#include "mappings.h"

#include <sys/mman.h>

static struct pool pool;

#define RW (PROT_READ | PROT_WRITE)
#define PAGE 4096ul

struct listing {
    size_t count, bytes;
    uintptr_t want_start;
    int prot_at_want;
};

static void list_one(const struct mapping *m, void *ctx)
{
    struct listing *l = ctx;
    l->count++;
    l->bytes += m->end - m->start;
    if (m->start == l->want_start)
        l->prot_at_want = m->prot;
}

static struct listing list(uintptr_t want_start)
{
    struct listing l = {0, 0, want_start, -1};
    mappings_for_each(list_one, &l);
    return l;
}

static void test_exact_and_split(void)
{
    const uintptr_t a = 0x10000000, b = 0x20000000;
    mappings_add(a, 4 * PAGE, RW, 1, false);
    mappings_add(b, 2 * PAGE, RW, 2, false);
    CHECK(list(a).count == 2 && list(a).bytes == 6 * PAGE);

    mappings_protect(a, PAGE, PROT_READ);          /* the head only: split */
    struct listing l = list(a);
    CHECK(l.count == 3 && l.bytes == 6 * PAGE && l.prot_at_want == PROT_READ);
    CHECK(list(a + PAGE).prot_at_want == RW);

    mappings_remove(a, 4 * PAGE);                  /* both pieces, one munmap */
    l = list(b);
    CHECK(l.count == 1 && l.bytes == 2 * PAGE && l.prot_at_want == RW);
    mappings_protect(b, 2 * PAGE, PROT_NONE);
    CHECK(list(b).prot_at_want == PROT_NONE);
    mappings_remove(b, 2 * PAGE);
    CHECK(list(0).count == 0);
}

static void test_cuts(void)
{
    const uintptr_t a = 0x30000000;
    mappings_add(a, 8 * PAGE, RW, 1, false);
    mappings_remove(a + 2 * PAGE, 2 * PAGE);       /* a hole in the middle */
    struct listing l = list(a);
    CHECK(l.count == 2 && l.bytes == 6 * PAGE && l.prot_at_want == RW);
    CHECK(list(a + 4 * PAGE).prot_at_want == RW);

    mappings_add(a + PAGE, 4 * PAGE, PROT_READ, 3, true);   /* MAP_FIXED over both */
    l = list(a + PAGE);
    CHECK(l.count == 3 && l.bytes == 8 * PAGE && l.prot_at_want == PROT_READ);

    mappings_add(a, 3 * PAGE, RW, 4, false);       /* a stale region's start, reused */
    CHECK(list(a).count == 3);
    mappings_remove(a, 8 * PAGE);
    CHECK(list(0).count == 0);
}

static void test_many(void)
{
    enum { N = 5000 };
    for (uintptr_t i = 0; i < N; i++)
        mappings_add(0x100000000 + i * 2 * PAGE, PAGE, RW, 5, false);
    for (uintptr_t i = 0; i < N; i += 2)
        mappings_remove(0x100000000 + i * 2 * PAGE, PAGE);
    for (uintptr_t i = 0; i < N; i++)                /* refill: deleted slots reused */
        mappings_add(0x200000000 + i * 2 * PAGE, PAGE, RW, 6, false);
    struct listing l = list(0x100000000 + 2 * PAGE);
    CHECK(l.count == N / 2 + N && l.prot_at_want == RW);
    for (uintptr_t i = 1; i < N; i += 2)
        mappings_protect(0x100000000 + i * 2 * PAGE, PAGE, PROT_NONE);
    CHECK(list(0x100000000 + 3 * 2 * PAGE).prot_at_want == PROT_NONE);
    for (uintptr_t i = 1; i < N; i += 2)
        mappings_remove(0x100000000 + i * 2 * PAGE, PAGE);
    for (uintptr_t i = 0; i < N; i++)
        mappings_remove(0x200000000 + i * 2 * PAGE, PAGE);
    CHECK(list(0).count == 0);
}

int main(void)
{
    pool_init(&pool, 24, 0);
    CHECK(mappings_init(&pool));
    test_exact_and_split();
    test_cuts();
    test_many();
    return CHECK_DONE("test_mappings");
}
