/* test_tables.c — the block table (insert, find, release, double release, remove with
 * backward shift, growth, iteration, threads; blocks filed by a header word in their
 * redzone, and a damaged word; guarded blocks filed by slot; blocks in distant leaves
 * listed) and the stack table (one record per distinct stack however often it is
 * interned, distinct stacks apart, concurrent interning of the same stacks agrees on the
 * ids). */
#include "check.h"
#include "blocks.h"
#include "stacks.h"

#include <pthread.h>
#include <string.h>

static struct pool pool;

static void count_live(const struct block *b, void *ctx)
{
    if (b->state == BLOCK_LIVE)
        ++*(size_t *)ctx;
}

static struct block make_block(uintptr_t addr, size_t size)
{
    return (struct block){.addr = addr, .size = size, .alloc_stack = 7, .kind = ALLOC_MALLOC};
}

static void test_block_life_cycle(void)
{
    struct block b;
    CHECK(blocks_insert(&(struct block){.addr = 0x1000, .size = 13, .alloc_stack = 3}));
    CHECK(blocks_find(0x1000, &b) && b.size == 13 && b.alloc_stack == 3);
    CHECK(!blocks_find(0x1010, &b));
    uint64_t allocs, frees, bytes;
    CHECK(blocks_release(0x1000, &b) && b.state == BLOCK_LIVE && b.size == 13);
    CHECK(!blocks_find(0x1000, &b));                 /* a freed block leaves the table */
    CHECK(!blocks_release(0x1000, &b));
    CHECK(!blocks_release(0x2000, &b));
    blocks_totals(&allocs, &frees, &bytes);
    CHECK(allocs == 1 && frees == 1 && bytes == 13);
    CHECK(blocks_insert(&(struct block){.addr = 0x1000, .size = 5}));
    CHECK(blocks_release(0x1000, &b) && b.addr == 0x1000 && b.size == 5);
    CHECK(!blocks_find(0x1000, &b));
    CHECK(!blocks_release(0x1000, &b));
}

/* Enough blocks to grow every shard several times; every other one removed again, which
 * exercises backward-shift deletion inside long probe chains. */
static void test_growth_and_removal(void)
{
    enum { N = 200000 };
    struct block b;
    size_t live = 0, found = 0, inserted = 0;
    for (uintptr_t i = 1; i <= N; i++) {
        struct block nb = make_block(i * 48, i);
        inserted += blocks_insert(&nb);
    }
    CHECK(inserted == N);
    for (uintptr_t i = 1; i <= N; i += 2)
        blocks_release(i * 48, &b);
    for (uintptr_t i = 1; i <= N; i++)
        found += blocks_find(i * 48, &b) && b.size == i;
    CHECK(found == N / 2);
    blocks_for_each(count_live, &live);
    CHECK(live == N / 2);
    CHECK(blocks_live_count() == N / 2);
    for (uintptr_t i = 2; i <= N; i += 2)
        blocks_release(i * 48, &b);
    CHECK(blocks_live_count() == 0);
}

static void *insert_and_remove(void *arg)
{
    uintptr_t base = (uintptr_t)arg;
    struct block b;
    size_t ok = 0;
    for (uintptr_t i = 0; i < 50000; i++) {
        struct block nb = make_block(base + i * 16, i);
        blocks_insert(&nb);
        ok += blocks_release(base + i * 16, &b) && b.size == i;
    }
    return (void *)ok;
}

/* The table keeps a block in 16 bytes: every field must come back whole at its limits,
 * at both ends of a page and of the address space the page map covers. */
static void test_packed_fields(void)
{
    const uintptr_t addrs[] = {0x7000, 0x7fff, (1ull << 47) - 1, 0x12345678ff0};
    for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++) {
        struct block in = {.addr = addrs[i], .size = (1ull << 47) + 12345, .alloc_stack = STACK_ID_LIMIT - 1,
                           .tid = (1u << 22) - 1, .kind = ALLOC_NEW_ARRAY, .head_shift = 40,
                           .flags = BLOCK_GUARDED},
                     out;
        CHECK(blocks_insert(&in));
        CHECK(blocks_find(in.addr, &out));
        CHECK(out.addr == in.addr && out.size == in.size && out.alloc_stack == in.alloc_stack);
        CHECK(out.tid == in.tid && out.kind == in.kind && out.head_shift == in.head_shift);
        CHECK(out.flags == BLOCK_GUARDED && out.state == BLOCK_LIVE);
        CHECK(blocks_release(in.addr, &out) && !blocks_find(in.addr, &out));
    }
    struct block high = {.addr = 1ull << 47, .size = 1}, out;
    CHECK(!blocks_insert(&high) && !blocks_find(high.addr, &out));   /* above the page map */
}

/* A block laid out as memtrace's heap lays out one with the smallest head redzone, in a
 * chunk made up here with glibc's header (its size word, flag bits low): the test may run
 * under another allocator (ASan's). */
static _Alignas(16) uint8_t chunk_memory[2][4096];

static struct block redzoned_block(int i, size_t size, uint32_t stack, uint32_t tid, size_t flags)
{
    uint8_t *raw = chunk_memory[i] + 64;
    size_t chunk = (2 * BLOCK_REDZONE + size + sizeof(size_t) + 15) & ~(size_t)15;
    size_t word = chunk | flags;
    memcpy(raw - sizeof word, &word, sizeof word);
    memset(raw, 0xa5, 2 * BLOCK_REDZONE + size);
    return (struct block){.addr = (uintptr_t)raw + BLOCK_REDZONE, .size = size, .alloc_stack = stack,
                          .tid = tid, .kind = ALLOC_NEW, .head_shift = BLOCK_REDZONE_SHIFT};
}

static void count_header_filed(const struct block *b, void *ctx)
{
    const struct block *want = ctx;
    if (b->addr == want[0].addr || b->addr == want[1].addr)
        CHECK(b->size == (b->addr == want[0].addr ? want[0].size : want[1].size));
}

static void test_header_filed(void)
{
    struct block out, in[2] = {redzoned_block(0, 13, STACK_ID_LIMIT - 1, (1u << 22) - 1, 1),
                               redzoned_block(1, 100, 5, 77, 2)};  /* mmapped: left to a table */
    for (int i = 0; i < 2; i++) {
        CHECK(blocks_insert(&in[i]) && blocks_find(in[i].addr, &out));
        CHECK(out.size == in[i].size && out.alloc_stack == in[i].alloc_stack && out.tid == in[i].tid);
        CHECK(out.kind == ALLOC_NEW && out.head_shift == BLOCK_REDZONE_SHIFT && out.flags == 0);
        CHECK(!blocks_find(in[i].addr + 16, &out) && !blocks_find(in[i].addr - 16, &out));
    }
    CHECK(blocks_live_count() == 2);
    blocks_for_each(count_header_filed, in);
    CHECK(((uint8_t *)in[0].addr)[-BLOCK_REDZONE] != 0xa5);     /* the first one has a word */
    CHECK(((uint8_t *)in[1].addr)[-BLOCK_REDZONE] == 0xa5);
    ((uint8_t *)in[0].addr)[-BLOCK_REDZONE + 5] ^= 0x40;        /* an underflow hits it */
    CHECK(blocks_find(in[0].addr, &out) && out.flags == BLOCK_HEADER_DAMAGED && out.size == 0);
    for (int i = 0; i < 2; i++)
        CHECK(blocks_release(in[i].addr, &out) && !blocks_find(in[i].addr, &out));
    CHECK(blocks_live_count() == 0);
}

/* Two threads free every header-filed block at once: each block is found by exactly one
 * of them (its bit is cleared by one atomic operation), and the counts, kept per thread,
 * still sum to nothing live. */
#define RACE_BLOCKS 20000
static _Alignas(64) uint8_t race_memory[RACE_BLOCKS * 64];

static pthread_barrier_t race_start;

static void *release_all(void *arg)
{
    (void)arg;
    size_t found = 0;
    pthread_barrier_wait(&race_start);
    struct block out;
    for (size_t i = 0; i < RACE_BLOCKS; i++)
        found += blocks_release((uintptr_t)race_memory + i * 64 + 32, &out) && out.size == 24;
    return (void *)found;
}

static void test_header_filed_race(void)
{
    uint64_t allocs0, frees0, bytes0, allocs, frees, bytes;
    blocks_totals(&allocs0, &frees0, &bytes0);
    for (size_t i = 0; i < RACE_BLOCKS; i++) {
        size_t word = 64 | 1;                 /* a 64-byte chunk in use: 56 usable */
        memcpy(race_memory + i * 64 + 8, &word, sizeof word);
        struct block b = {.addr = (uintptr_t)race_memory + i * 64 + 32, .size = 24,
                          .alloc_stack = 9, .head_shift = BLOCK_REDZONE_SHIFT};
        CHECK(blocks_insert(&b));
    }
    CHECK(blocks_live_count() == RACE_BLOCKS);
    pthread_t t[2];
    void *found[2];
    pthread_barrier_init(&race_start, NULL, 2);
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, release_all, NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], &found[i]);
    pthread_barrier_destroy(&race_start);
    CHECK((size_t)found[0] + (size_t)found[1] == RACE_BLOCKS);
    CHECK(blocks_live_count() == 0);
    blocks_totals(&allocs, &frees, &bytes);
    CHECK(allocs - allocs0 == RACE_BLOCKS && frees - frees0 == RACE_BLOCKS);
}

static void test_blocks_threads(void)
{
    pthread_t t[4];
    void *ok;
    size_t total = 0;
    for (uintptr_t i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, insert_and_remove, (void *)((i + 1) << 32));
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], &ok);
        total += (size_t)ok;
    }
    CHECK(total == 4 * 50000);
    CHECK(blocks_live_count() == 0);
}

static void test_stack_dedup(void)
{
    uintptr_t a[3] = {0x401000, 0x402000, 0x403000};
    uintptr_t b[3] = {0x401000, 0x402000, 0x403001};
    uint32_t first = stacks_intern(a, 3);
    uint32_t limit_before = stacks_id_limit();
    bool same = true;
    for (int i = 0; i < 1000000; i++)
        same &= stacks_intern(a, 3) == first;
    CHECK(first != 0 && same);
    CHECK(stacks_id_limit() == limit_before);         /* a million interns, one record */
    uint32_t other = stacks_intern(b, 3);
    CHECK(other != 0 && other != first);
    CHECK(stacks_intern(a, 2) != first);             /* a prefix is another stack */
    const struct stack_record *rec = stacks_get(first);
    CHECK(rec && rec->depth == 3 && stacks_frame(rec, 0) == a[0] && stacks_frame(rec, 1) == a[1] &&
          stacks_frame(rec, 2) == a[2]);
    CHECK(stacks_get(0) == NULL);
}

/* Whether pcs come back whole from their record, found again by a second intern, and
 * held narrow (32-bit offsets) or not as expected. */
static bool round_trips(const uintptr_t *pcs, int depth, bool narrow)
{
    uint32_t id = stacks_intern(pcs, depth);
    const struct stack_record *rec = stacks_get(id);
    bool same = rec && rec->depth == depth && rec->narrow == narrow && stacks_intern(pcs, depth) == id;
    for (int i = 0; same && i < depth; i++)
        same = stacks_frame(rec, i) == pcs[i];
    return same;
}

static void test_narrow_frames(void)
{
    const uintptr_t exe = 0x401000, lib = 0x7f3a12345000, top = UINTPTR_MAX;
    uintptr_t two_places[5] = {lib + 0x10, exe + 0x20, lib + 0x7fffffff, exe, lib};
    uintptr_t at_limit[3] = {exe, exe + 0x7fffffff, exe + 0x80000000};   /* 2^31 up: a second base */
    uintptr_t three_places[3] = {exe, lib, 0x7ffd00000000};
    uintptr_t ends[3] = {0, top, top - 0x7fffffff};
    uintptr_t one[1] = {lib + 0x1234};
    CHECK(round_trips(two_places, 5, true));
    CHECK(round_trips(at_limit, 3, true));
    CHECK(round_trips(three_places, 3, false));
    CHECK(round_trips(ends, 3, true));
    CHECK(round_trips(one, 1, true));
    /* A stack that differs only in a frame neither of a record's bases reaches is another. */
    uintptr_t near[2] = {lib, lib + 0x10}, below[2] = {lib, 0x1000}, far[2] = {lib, lib + 0x80000010};
    uint32_t near_id = stacks_intern(near, 2);
    CHECK(near_id != 0 && stacks_intern(below, 2) != near_id && stacks_intern(far, 2) != near_id);
}

static void *intern_many(void *arg)
{
    uint32_t *ids = arg;
    for (uintptr_t i = 0; i < 20000; i++) {
        uintptr_t pcs[2] = {0x500000 + i, 0x600000};
        ids[i] = stacks_intern(pcs, 2);
    }
    return NULL;
}

static void test_stacks_threads(void)
{
    static uint32_t ids[2][20000];
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, intern_many, ids[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    size_t agree = 0, again = 0, distinct = 0;
    for (int i = 0; i < 20000; i++)
        agree += ids[0][i] != 0 && ids[0][i] == ids[1][i];
    CHECK(agree == 20000);
    /* The index grew from 4096 slots meanwhile: every stack keeps its one id. */
    static uint8_t seen[STACK_ID_LIMIT];
    for (uintptr_t i = 0; i < 20000; i++) {
        uintptr_t pcs[2] = {0x500000 + i, 0x600000};
        again += stacks_intern(pcs, 2) == ids[0][i];
        distinct += ids[0][i] < STACK_ID_LIMIT && !seen[ids[0][i]]++;
    }
    CHECK(again == 20000 && distinct == 20000);
}

/* Blocks in leaves far apart (a leaf maps 1 GiB) are all listed. */
static void test_listed_across_leaves(void)
{
    const uintptr_t addrs[] = {0x3000, 0x40003000, 0x123400003000, 0x7e0000003000};
    const size_t n = sizeof addrs / sizeof addrs[0];
    size_t before = 0, after = 0;
    struct block out;
    blocks_for_each(count_live, &before);
    for (size_t i = 0; i < n; i++)
        CHECK(blocks_insert(&(struct block){.addr = addrs[i], .size = 8}));
    blocks_for_each(count_live, &after);
    CHECK(after == before + n);
    for (size_t i = 0; i < n; i++)
        CHECK(blocks_release(addrs[i], &out));
}

/* Guarded blocks go by slot: found at their start only, one per slot, listed, and taken
 * out; filing them costs no page table (the pool's bytes in use stay as they were). */
static void test_filed_by_slot(void)
{
    const uintptr_t first = 0x500000001000, stride = 0x11000;
    const size_t slots = 64;
    struct block out;
    CHECK(blocks_file_by_slot(first, stride, slots));
    size_t live_before = blocks_live_count(), listed = 0, in_use = pool.in_use;
    for (size_t i = 0; i < slots; i += 8) {
        struct block b = make_block(first + i * stride + stride - 0x1000 - 24 + i, 24 + i);
        b.flags = BLOCK_GUARDED;
        b.tid = 9;
        CHECK(blocks_insert(&b));
    }
    CHECK(pool.in_use == in_use);
    CHECK(blocks_live_count() == live_before + slots / 8);
    uintptr_t at = first + 16 * stride + stride - 0x1000 - 24 + 16;
    CHECK(blocks_find(at, &out) && out.addr == at && out.size == 40 && out.alloc_stack == 7 &&
          out.tid == 9 && out.flags == BLOCK_GUARDED);
    CHECK(!blocks_find(at + 8, &out) && !blocks_find(at - stride, &out));
    blocks_for_each(count_live, &listed);
    CHECK(listed == blocks_live_count());
    CHECK(blocks_release(at, &out) && out.size == 40 && !blocks_release(at, &out));
    for (size_t i = 0; i < slots; i += 8)
        blocks_release(first + i * stride + stride - 0x1000 - 24 + i, &out);
    CHECK(blocks_live_count() == live_before);
    CHECK(!blocks_file_by_slot(first, (uintptr_t)1 << 40, 2));   /* offsets must fit an entry */
}

int main(void)
{
    pool_init(&pool, 24, 0);
    CHECK(blocks_init(&pool));
    CHECK(stacks_init(&pool, 0, 0));
    test_block_life_cycle();
    test_growth_and_removal();
    test_packed_fields();
    test_blocks_threads();
    test_header_filed();
    test_header_filed_race();
    test_filed_by_slot();
    test_listed_across_leaves();
    test_stack_dedup();
    test_narrow_frames();
    test_stacks_threads();
    return CHECK_DONE("test_tables");
}
