/* test_pool.c — behaviours of the buddy pool: split, merge, alignment, zero-fill,
 * block sizes, ownership, dedicated arenas, exhaustion, bad frees, fork and threads. */
#include "pool.h"

#include "check.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>



#define SMALL_ARENA_ORDER 16      /* 64 KiB arenas keep "fill a whole arena" cheap */
#define SMALL_ARENA ((size_t)1 << SMALL_ARENA_ORDER)

static struct pool pool;

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t next_random(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

static bool is_all(const void *p, uint8_t byte, size_t len)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < len; i++)
        if (b[i] != byte)
            return false;
    return true;
}

static uintptr_t arena_base_of(const void *p, size_t arena_size)
{
    return (uintptr_t)p & ~(uintptr_t)(arena_size - 1);
}

static void test_split(void)
{
    enum { N = 64 };
    void *blocks[N];
    pool_init(&pool, SMALL_ARENA_ORDER, 0);
    for (int i = 0; i < N; i++)
        blocks[i] = pool_alloc(&pool, 1 + i % 32);
    CHECK(pool.narenas == 1);
    CHECK(pool.mapped == SMALL_ARENA);
    CHECK(pool.in_use == N * 32);
    bool aligned = true, same_arena = true, distinct = true;
    for (int i = 0; i < N; i++) {
        aligned &= blocks[i] && (uintptr_t)blocks[i] % 32 == 0;
        same_arena &= arena_base_of(blocks[i], SMALL_ARENA) == pool.arenas[0].base;
        for (int j = 0; j < i; j++)
            distinct &= blocks[i] != blocks[j];
    }
    CHECK(aligned);
    CHECK(same_arena);
    CHECK(distinct);
}

static void test_merge_back(void)
{
    enum { N = SMALL_ARENA / 32 };
    static void *blocks[N];
    pool_init(&pool, SMALL_ARENA_ORDER, 0);
    for (int i = 0; i < N; i++)
        blocks[i] = pool_alloc(&pool, 32);
    CHECK(pool.narenas == 1);
    CHECK(pool.in_use == SMALL_ARENA);
    uintptr_t base = pool.arenas[0].base;
    bool inside = true;
    for (int i = 0; i < N; i++)
        inside &= blocks[i] && arena_base_of(blocks[i], SMALL_ARENA) == base;
    CHECK(inside);
    for (int i = N - 1; i > 0; i--) {
        int j = (int)(next_random(&rng_state) % (uint64_t)(i + 1));
        void *t = blocks[i];
        blocks[i] = blocks[j];
        blocks[j] = t;
    }
    for (int i = 0; i < N; i++)
        pool_free(&pool, blocks[i]);
    CHECK(pool.in_use == 0);
    void *whole = pool_alloc(&pool, SMALL_ARENA);
    CHECK((uintptr_t)whole == base);
    CHECK(pool.mapped == SMALL_ARENA);
    CHECK(pool.narenas == 1);
    CHECK(pool_block_size(&pool, whole) == SMALL_ARENA);
}

static void test_alignment_of_every_order(void)
{
    pool_init(&pool, SMALL_ARENA_ORDER, 0);
    bool aligned = true, sized = true;
    for (unsigned order = POOL_MIN_ORDER; order <= SMALL_ARENA_ORDER + 2; order++) {
        size_t size = (size_t)1 << order;
        void *exact = pool_alloc(&pool, size);
        void *above_half = pool_alloc(&pool, size / 2 + 1);
        aligned &= exact && (uintptr_t)exact % size == 0;
        aligned &= above_half && (uintptr_t)above_half % size == 0;
        sized &= pool_block_size(&pool, exact) == size;
        sized &= pool_block_size(&pool, above_half) == size;
    }
    CHECK(aligned);
    CHECK(sized);
}

static void test_zero_fill_on_reuse(void)
{
    pool_init(&pool, SMALL_ARENA_ORDER, 0);
    size_t sizes[] = {32, 100, 4096, SMALL_ARENA};  /* the last is wiped by madvise */
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t *p = pool_alloc(&pool, sizes[i]);
        CHECK(p && is_all(p, 0, sizes[i]));
        memset(p, 0xab, sizes[i]);
        pool_free(&pool, p);
        uint8_t *again = pool_alloc(&pool, sizes[i]);
        CHECK(again == p);
        CHECK(again && is_all(again, 0, sizes[i]));
        pool_free(&pool, again);
    }
    /* Two dirty halves merged into one block: the upper half's free-list links must go.
     * y is freed first so that hi's links point somewhere (are not zero already). */
    uint8_t *lo = pool_alloc(&pool, 64), *hi = pool_alloc(&pool, 64);
    uint8_t *x = pool_alloc(&pool, 64), *y = pool_alloc(&pool, 64);
    CHECK(hi == lo + 64 && x && y);
    memset(lo, 0xcd, 64);
    memset(hi, 0xcd, 64);
    pool_free(&pool, y);
    pool_free(&pool, hi);
    pool_free(&pool, lo);
    uint8_t *both = pool_alloc(&pool, 128);
    CHECK(both == lo);
    CHECK(both && is_all(both, 0, 128));
}

static void test_block_size(void)
{
    pool_init(&pool, SMALL_ARENA_ORDER, 0);
    uint8_t *p = pool_alloc(&pool, 33);
    CHECK(pool_block_size(&pool, p) == 64);
    CHECK(pool_block_size(&pool, p + 32) == 0);   /* inside the block, not its start */
    CHECK(pool_block_size(&pool, p + 1) == 0);
    CHECK(pool_block_size(&pool, NULL) == 0);
    CHECK(pool_block_size(&pool, &p) == 0);
    pool_free(&pool, p);
    CHECK(pool_block_size(&pool, p) == 0);
}

static void test_owns(void)
{
    pool_init(&pool, SMALL_ARENA_ORDER, 0);
    int on_stack;
    CHECK(!pool_owns(&pool, &on_stack));
    uint8_t *p = pool_alloc(&pool, 32);
    uint8_t *base = (uint8_t *)pool.arenas[0].base;
    void *heap = malloc(16);
    CHECK(pool_owns(&pool, p));
    CHECK(pool_owns(&pool, base));
    CHECK(pool_owns(&pool, base + SMALL_ARENA - 1));
    CHECK(!pool_owns(&pool, base + SMALL_ARENA));
    CHECK(!pool_owns(&pool, base - 1));
    CHECK(!pool_owns(&pool, &on_stack));
    CHECK(!pool_owns(&pool, heap));
    CHECK(!pool_owns(&pool, NULL));
    free(heap);
}

static void add_range(uintptr_t start, size_t len, void *ctx)
{
    (void)start;
    *(size_t *)ctx += len;
}

static void test_oversize(void)
{
    size_t big = 200 * 1024, rounded = 256 * 1024;
    pool_init(&pool, SMALL_ARENA_ORDER, 0);
    pool_free(&pool, pool_alloc(&pool, 32));     /* one regular arena first */
    uint8_t *p = pool_alloc(&pool, big);
    CHECK(p && (uintptr_t)p % rounded == 0);
    CHECK(pool.narenas == 2);
    CHECK(pool.mapped == SMALL_ARENA + rounded);
    CHECK(pool.arenas[1].base == (uintptr_t)p);
    CHECK(pool_block_size(&pool, p) == rounded);
    CHECK(p && is_all(p, 0, big));
    size_t total = 0;
    pool_for_each_arena(&pool, add_range, &total);
    CHECK(total == pool.mapped);
    pool_free(&pool, p);
    CHECK(pool_alloc(&pool, big) == p);          /* the freed dedicated arena is reused */
    CHECK(pool.mapped == SMALL_ARENA + rounded);
    CHECK(pool_alloc(&pool, SIZE_MAX) == NULL);
    CHECK(pool_alloc(&pool, (size_t)1 << 50) == NULL);
    CHECK(pool.narenas == 2);
}

static void test_exhaustion(void)
{
    pool_init(&pool, SMALL_ARENA_ORDER, 2 * SMALL_ARENA);
    void *a = pool_alloc(&pool, SMALL_ARENA);
    void *b = pool_alloc(&pool, SMALL_ARENA);
    CHECK(a && b);
    CHECK(pool_alloc(&pool, 32) == NULL);
    CHECK(pool_alloc(&pool, 4 * SMALL_ARENA) == NULL);
    CHECK(pool.mapped == 2 * SMALL_ARENA);
    pool_free(&pool, b);
    void *small = pool_alloc(&pool, 32);
    CHECK(small == b);
    CHECK(pool.mapped <= pool.limit);

    /* Past POOL_MAX_ARENAS arenas even an unlimited pool says no. */
    pool_init(&pool, 12, 0);
    int got = 0;
    for (int i = 0; i < POOL_MAX_ARENAS + 4; i++)
        got += pool_alloc(&pool, 4096) != NULL;
    CHECK(got == POOL_MAX_ARENAS);
    CHECK(pool.narenas == POOL_MAX_ARENAS);
}

static void test_bad_frees_are_harmless(void)
{
    pool_init(&pool, SMALL_ARENA_ORDER, 0);
    uint8_t *a = pool_alloc(&pool, 32), *b = pool_alloc(&pool, 32);
    uint8_t *c = pool_alloc(&pool, 256);
    int on_stack;
    pool_free(&pool, NULL);
    pool_free(&pool, &on_stack);
    pool_free(&pool, c + 32);                    /* interior of a live block */
    pool_free(&pool, c + 3);                     /* misaligned */
    pool_free(&pool, (uint8_t *)pool.arenas[0].base + SMALL_ARENA);
    CHECK(pool.in_use == 32 + 32 + 256);
    CHECK(pool_block_size(&pool, c) == 256);
    pool_free(&pool, a);
    pool_free(&pool, a);                         /* double free of a free block */
    pool_free(&pool, b);
    pool_free(&pool, a);                         /* a is now inside a merged free block */
    pool_free(&pool, b);
    CHECK(pool.in_use == 256);
    pool_free(&pool, c);
    CHECK(pool.in_use == 0);
    CHECK(pool_alloc(&pool, SMALL_ARENA) == (void *)pool.arenas[0].base);
    CHECK(pool.narenas == 1);
}

static void test_fork(void)
{
    pool_init(&pool, SMALL_ARENA_ORDER, 0);
    pool_fork_prepare(&pool);
    pid_t pid = fork();
    if (pid == 0) {
        pool_fork_child(&pool);
        _exit(pool_alloc(&pool, 64) ? 0 : 1);
    }
    pool_fork_parent(&pool);
    int status = -1;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(pool_alloc(&pool, 64) != NULL);
}

/* Each thread owns SLOTS blocks filled with a byte unique to (thread, slot); an overlap
 * with any other live block shows up as a foreign byte when the block is checked. */
enum { SLOTS = 64, ROUNDS = 100000 };

struct stress {
    int id;
    int errors;
};

static void *stress_thread(void *arg)
{
    struct stress *s = arg;
    uint8_t *blocks[SLOTS] = {0};
    size_t sizes[SLOTS] = {0};
    uint64_t rng = 0x1234567u + (uint64_t)s->id * 0x9e3779b9u;
    for (int round = 0; round < ROUNDS + SLOTS; round++) {
        int slot = round < ROUNDS ? (int)(next_random(&rng) % SLOTS) : round - ROUNDS;
        uint8_t pattern = (uint8_t)(1 + s->id * SLOTS + slot);
        if (blocks[slot]) {
            s->errors += !is_all(blocks[slot], pattern, sizes[slot]);
            pool_free(&pool, blocks[slot]);
            blocks[slot] = NULL;
            continue;
        }
        if (round >= ROUNDS)
            continue;
        uint64_t r = next_random(&rng);
        size_t size = r % 16 ? 1 + r % 512 : 1 + r % 65536;
        uint8_t *p = pool_alloc(&pool, size);
        if (!p || !is_all(p, 0, size)) {
            s->errors++;
            continue;
        }
        memset(p, pattern, size);
        blocks[slot] = p;
        sizes[slot] = size;
    }
    return NULL;
}

static void test_two_thread_stress(void)
{
    pool_init(&pool, 20, 0);
    struct stress s[2] = {{.id = 0}, {.id = 1}};
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&threads[i], NULL, stress_thread, &s[i]) == 0);
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    CHECK(s[0].errors == 0);
    CHECK(s[1].errors == 0);
    CHECK(pool.in_use == 0);
}

int main(void)
{
    test_split();
    test_merge_back();
    test_alignment_of_every_order();
    test_zero_fill_on_reuse();
    test_block_size();
    test_owns();
    test_oversize();
    test_exhaustion();
    test_bad_frees_are_harmless();
    test_fork();
    test_two_thread_stress();
    return CHECK_DONE("test_pool");
}
