/* test_quarantine.c — the quarantine of freed blocks: FIFO order within the byte bound,
 * batches of evictions, a second free finding its block through the tag (and a wild or
 * evicted pointer not finding one, without a fault), tag damage located to the byte,
 * iteration over what waits, a ring that grows when blocks are many and small, a bound
 * that follows the live heap. */
#include "check.h"
#include "quarantine.h"

#include <string.h>
#include <sys/mman.h>

#define BLOCKS 2304
#define BLOCK_SIZE 48
#define STRIDE 80                    /* a 16-byte redzone for the tag, the block, slack */

static struct pool pool;
static uint8_t *arena;

static struct block freed_block(int i)
{
    return (struct block){.addr = (uintptr_t)arena + i * STRIDE + 16, .size = BLOCK_SIZE,
                          .alloc_stack = 100 + i, .free_stack = 200 + i, .state = BLOCK_FREED,
                          .head_shift = 4};
}

static void count_waiting(const struct block *b, struct quarantine_place place, void *ctx)
{
    (void)b;
    (void)place;
    ++*(int *)ctx;
}

static void test_fifo_and_find(void)
{
    struct quarantine_evicted out[QUARANTINE_EVICT_MAX];
    struct block b;
    size_t evicted = 0;
    int first_out = -1;

    /* Bound 8 * 10 blocks' memory on each of 8 shards: all on shard 3, so ten fit. */
    for (int i = 0; i < 10; i++) {
        struct block fb = freed_block(i);
        evicted += quarantine_push(3, &fb, out);
    }
    CHECK(evicted == 0);
    CHECK(quarantine_find(freed_block(4).addr, &b) && b.alloc_stack == 104 && b.free_stack == 204);
    CHECK(!quarantine_find(freed_block(4).addr + 16, &b));   /* not a block start */
    CHECK(!quarantine_find(16, &b));                          /* unmapped: no fault */
    CHECK(!quarantine_find((uintptr_t)arena, &b));            /* below the tag: not mapped */

    struct block fb = freed_block(10);
    size_t n = quarantine_push(3, &fb, out);
    CHECK(n == QUARANTINE_EVICT_MAX);                         /* over the bound: a batch */
    if (n)
        first_out = (int)(out[0].block.alloc_stack - 100);
    CHECK(first_out == 0 && out[n - 1].block.alloc_stack == 100 + n - 1);
    CHECK(!quarantine_find(freed_block(0).addr, &b));         /* evicted: no longer found */
    CHECK(quarantine_find(freed_block(10).addr, &b));
    CHECK(quarantine_tag_damage(&out[1].block, out[1].place) == 0);

    int waiting = 0;
    quarantine_for_each(count_waiting, &waiting);
    CHECK(waiting == 11 - QUARANTINE_EVICT_MAX);
}

static void test_tag_damage(void)
{
    struct quarantine_evicted out[QUARANTINE_EVICT_MAX];
    struct block fb = freed_block(20), b;
    quarantine_push(5, &fb, out);
    uint8_t *tag = (uint8_t *)fb.addr - QUARANTINE_TAG_SIZE;
    CHECK(quarantine_find(fb.addr, &b));
    tag[3] ^= 0xff;
    tag[9] ^= 0xff;
    struct quarantine_place place = {5, 0};
    CHECK(quarantine_tag_damage(&fb, place) == (uintptr_t)&tag[9]);   /* the nearest one */
    CHECK(!quarantine_find(fb.addr, &b));              /* a broken tag finds nothing */
}

/* Big blocks first, so that blocks have left and the oldest sits at neither end of the
 * ring, then far more small ones than the ring's first size: the ring grows, every block
 * is still found at its place, and blocks leave oldest first throughout. */
static void test_ring_growth(void)
{
    struct quarantine_evicted out[QUARANTINE_EVICT_MAX];
    struct block b;
    int waiting = 0, last_out = -1;
    bool in_order = true;
    CHECK(quarantine_init(&pool, 8 * 1900 * quarantine_held_bytes(&(struct block){.size = 48, .head_shift = 4})));
    for (int i = 0; i < 2200; i++) {
        struct block fb = freed_block(i);
        if (i < 300)
            fb.size = 1000;
        size_t n = quarantine_push(6, &fb, out);
        for (size_t k = 0; k < n; k++) {
            in_order &= (int)out[k].block.alloc_stack - 100 == last_out + 1;
            last_out = (int)out[k].block.alloc_stack - 100;
        }
    }
    CHECK(in_order && last_out >= 300 - 1);
    quarantine_for_each(count_waiting, &waiting);
    CHECK(waiting == 2200 - (last_out + 1) && waiting > 1024);
    int found = 0;
    for (int i = last_out + 1; i < 2200; i++)
        found += quarantine_find(freed_block(i).addr, &b) && b.alloc_stack == 100u + (unsigned)i;
    CHECK(found == waiting);
}

/* Pushes `rounds` blocks on each of the first `shards` shards in turn; returns the most
 * blocks that waited at once. */
static int peak_waiting(int shards, int rounds, int *next)
{
    struct quarantine_evicted out[QUARANTINE_EVICT_MAX];
    int peak = 0;
    for (int r = 0; r < rounds; r++) {
        for (int s = 0; s < shards; s++) {
            struct block fb = freed_block((*next)++ % BLOCKS);
            quarantine_push((unsigned)s, &fb, out);
            int waiting = 0;
            quarantine_for_each(count_waiting, &waiting);
            peak = waiting > peak ? waiting : peak;
        }
    }
    return peak;
}

/* A bound of 8 shards x 10 blocks: four threads freeing in a small heap share one shard's
 * ten; a live heap of 30 blocks lets them hold that much together; a big heap, ten each. */
static void test_bound_follows_live_heap(void)
{
    size_t held = quarantine_held_bytes(&(struct block){.size = BLOCK_SIZE, .head_shift = 4});
    int next = 0;
    CHECK(quarantine_init(&pool, 8 * 10 * held));
    peak_waiting(4, 1, &next);
    quarantine_fit_to_heap(0);
    int small = peak_waiting(4, 40, &next);
    CHECK(small <= 10 && small >= 4);
    quarantine_fit_to_heap(30 * held);
    int medium = peak_waiting(4, 40, &next);
    CHECK(medium <= 30 && medium > 10);
    quarantine_fit_to_heap(1000 * held);
    int big = peak_waiting(4, 40, &next);
    CHECK(big <= 40 && big > 30);
    CHECK(quarantine_init(&pool, 8 * 10 * held));
    quarantine_fit_to_heap(0);                   /* one thread alone keeps its eighth */
    CHECK(peak_waiting(1, 40, &next) == 10);
}

int main(void)
{
    pool_init(&pool, 24, 0);
    /* The first page stays PROT_NONE: a read before the arena's blocks must not fault. */
    uint8_t *map = mmap(NULL, 2 * 4096 + BLOCKS * STRIDE, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(map != MAP_FAILED);
    mprotect(map, 4096, PROT_NONE);
    arena = map + 4096;
    struct block first = freed_block(0);
    /* 16 + 48 + 16 bytes of chunk, 8 of header, in 16-byte steps */
    CHECK(quarantine_held_bytes(&first) == 96);
    CHECK(quarantine_init(&pool, 8 * 10 * quarantine_held_bytes(&first)));
    test_fifo_and_find();
    test_tag_damage();
    test_ring_growth();
    test_bound_follows_live_heap();
    return CHECK_DONE("test_quarantine");
}
