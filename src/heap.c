/* heap.c — the allocation core behind every interposed entry point (see heap.h).
 *
 * A block is either guarded (src/guard.c: its own pages, a PROT_NONE page beside it) or
 * redzoned: glibc memory with a canary-filled redzone before and after it, checked when
 * the block is freed and at exit. Freed redzoned blocks wait in the quarantine as the
 * program left them, a hash of their first words checked when they leave (or, with
 * --free-fill, filled and the fill checked); freed guarded blocks wait PROT_NONE in the
 * guard pool's own quarantine. Which blocks are guarded: --guard. */
#include "heap.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "guard.h"
#include "nested.h"
#include "quarantine.h"
#include "runtime.h"
#include "slab.h"
#include "stacks.h"
#include "unwind_cache.h"

extern void *__libc_malloc(size_t size);
extern void *__libc_memalign(size_t align, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void __libc_free(void *ptr);

/* A freed block keeps what the program left in it, as under valgrind: a stale read sees
 * it (a pattern written over it made the classic loop that frees a node, then reads its
 * next pointer, follow a wild pointer). A stale write is seen by a 16-bit hash of each of
 * its first WATCHED_WORDS words, taken at the free and checked as it leaves. */
#define WATCHED_WORDS 8
/* Sizes above this are the signed result of a bug (malloc(-5)), as valgrind flags them. */
#define FISHY_SIZE ((size_t)PTRDIFF_MAX)
#define GLIBC_IS_MMAPPED 2           /* in a chunk's size word */
/* The most of a head redzone that holds a canary: an alignment of 2 MiB makes a 2 MiB
 * head, which filled was 2 MiB written (and made resident) per allocation. */
#define HEAD_CANARY_MAX 256
/* A program's first AUTO_GUARD_ALL allocations are all guarded, whatever their site: a small
 * program (most test cases) is then checked as by --guard=all, reads included, for about
 * 1.5 ms of mprotect per process (1.2-1.7 ms by hand). */
#define AUTO_GUARD_ALL 128
/* --guard=auto: each call site's first allocations, then 1 in 2, 4, … 1024; and never more
 * than 1 in AUTO_RATIO of all allocations once AUTO_FREE_START guarded ones were made. */
#define AUTO_FIRST_PER_SITE 2
#define AUTO_SITE_FLOOR 1024
#define AUTO_FREE_START 2000
#define AUTO_RATIO 512
/* --guard=auto: past the sites' first blocks, opening and closing guarded pages may take
 * this share of the program's CPU time. A free's mmap flushes the TLB on every core the
 * program runs on and waits for them: 8 threads spent 30% of their run there. */
#define GUARD_BUDGET_PERCENT 5
#define COUNTER_SHARDS 16
/* The guarded pool: address space only until used (PROT_NONE); bigger blocks get redzones. */
#define GUARD_SLOTS 8192
#define GUARD_MAX_BLOCK (64 * 1024)
/* The quarantine's bound follows the live heap; summing the table's counters reads a line
 * of each shard, so a thread does it once in this many frees. */
#define QUARANTINE_FIT_INTERVAL 1024

/* Guarded allocations, sharded by thread so that threads do not fight over one cache line
 * (allocation and free totals are the block table's). */
static struct guarded_count {
    uint64_t n;
} __attribute__((aligned(64))) guarded_counts[COUNTER_SHARDS];

static uint32_t *site_counts;        /* --guard=auto: allocations seen per stack id */
static bool guard_ready;
static bool slab_ready;              /* --allocator=memtrace and its reservation made */

bool heap_init(struct pool *pool)
{
    if (!quarantine_init(pool, (size_t)runtime_options.quarantine_size << 20))
        return false;
    site_counts = pool_alloc(pool, (size_t)STACK_ID_LIMIT * sizeof(uint32_t));
    slab_ready = runtime_options.allocator == ALLOCATOR_MEMTRACE && slab_init();
    guard_ready = runtime_options.guard != GUARD_NONE &&
                  guard_init(pool, GUARD_SLOTS, GUARD_MAX_BLOCK);
    if (guard_ready) {
        uintptr_t first;
        size_t stride, count;
        guard_layout(&first, &stride, &count);
        blocks_file_by_slot(first, stride, count);   /* else by page, as other blocks */
        guard_set_placement(runtime_options.guard_side ? GUARD_SIDE_UNDERFLOW : GUARD_SIDE_OVERFLOW,
                            runtime_options.guard_align == 1);
        /* Once a fault opens a freed block, the program goes on reading what it left there
         * (or the --free-fill byte): a stale next pointer read as zero ended a loop early. */
        guard_set_keep_freed_pages(runtime_options.free_fill != FILL_OFF ||
                                   runtime_options.continue_after_fault);
    }
    return true;
}



void heap_totals(struct heap_totals *out)
{
    memset(out, 0, sizeof *out);
    blocks_totals(&out->allocs, &out->frees, &out->bytes_allocated);
    for (int i = 0; i < COUNTER_SHARDS; i++)
        out->guarded += __atomic_load_n(&guarded_counts[i].n, __ATOMIC_RELAXED);
}

/* ----------------------------------------------------------------------------------
 * Redzones and patterns
 * -------------------------------------------------------------------------------- */

/* The canary byte at address a is CANARY_PATTERN[a & 15]: it depends on the address, so a
 * shifted copy of the redzone does not pass for it. Stored twice over, so that 16 bytes
 * starting at any phase can be copied or compared at once. */
static const uint8_t canary_pattern[32] = {
    0xa5, 0xa4, 0xa7, 0xa6, 0xa1, 0xa0, 0xa3, 0xa2, 0xad, 0xac, 0xaf, 0xae, 0xa9, 0xa8, 0xab, 0xaa,
    0xa5, 0xa4, 0xa7, 0xa6, 0xa1, 0xa0, 0xa3, 0xa2, 0xad, 0xac, 0xaf, 0xae, 0xa9, 0xa8, 0xab, 0xaa,
};

static void fill_canary(uintptr_t lo, uintptr_t hi)
{
    for (uintptr_t a = lo; a < hi; a += 16)
        memcpy((void *)a, canary_pattern + (a & 15), hi - a < 16 ? hi - a : 16);
}

/* Whether the 16 bytes at a hold their canary: two word compares, no call (this runs
 * twice on every free). */
static bool canary_chunk_intact(uintptr_t a)
{
    uint64_t have[2], want[2];
    memcpy(have, (const void *)a, 16);
    memcpy(want, canary_pattern + (a & 15), 16);
    return ((have[0] ^ want[0]) | (have[1] ^ want[1])) == 0;
}

/* The same for the 8 bytes at a: the head canary of most blocks (after the header word). */
static bool canary_word_intact(uintptr_t a)
{
    uint64_t have, want;
    memcpy(&have, (const void *)a, 8);
    memcpy(&want, canary_pattern + (a & 15), 8);
    return have == want;
}

/* The first overwritten canary byte in [lo, hi) scanning from `from_end` side, or 0: the
 * search once a redzone is known damaged, kept out of line. */
__attribute__((noinline, cold))
static uintptr_t first_bad_canary(uintptr_t lo, uintptr_t hi, bool from_end)
{
    for (uintptr_t i = 0; i < hi - lo; i++) {
        uintptr_t a = from_end ? hi - 1 - i : lo + i;
        if (*(const uint8_t *)a != canary_pattern[a & 15])
            return a;
    }
    return 0;
}

/* As first_bad_canary, the intact case inline: it is the usual one, checked on every free
 * and eviction (a redzone is usually one 16-byte chunk). */
static inline __attribute__((always_inline)) uintptr_t find_bad_canary(uintptr_t lo, uintptr_t hi,
                                                                      bool from_end)
{
    bool intact = true;
    for (uintptr_t a = lo; a < hi && intact; a += 16)
        intact = hi - a >= 16 ? canary_chunk_intact(a)
                 : hi - a == 8 ? canary_word_intact(a)
                               : memcmp((void *)a, canary_pattern + (a & 15), hi - a) == 0;
    return intact ? 0 : first_bad_canary(lo, hi, from_end);
}

static size_t head_size(const struct block *b)
{
    return b->head_shift ? (size_t)1 << b->head_shift : 0;
}

/* Where the canary before a block at addr with a head redzone of `head` bytes starts: all
 * of the redzone but the block table's header word, and at most HEAD_CANARY_MAX bytes. */
static uintptr_t canary_start(uintptr_t addr, size_t head)
{
    size_t span = head > BLOCK_HEADER_SIZE ? head - BLOCK_HEADER_SIZE : 0;
    return addr - (span < HEAD_CANARY_MAX ? span : HEAD_CANARY_MAX);
}

static uintptr_t head_canary_start(const struct block *b)
{
    return canary_start(b->addr, head_size(b));
}

/* Where the head redzone's canary ends: before the zeroed cookie of a scalar new block. */
static uintptr_t cookie_start(uintptr_t addr, enum alloc_kind kind)
{
    return kind == ALLOC_NEW ? addr - ARRAY_COOKIE_SIZE : addr;
}

static void fill_head(uintptr_t addr, size_t head, enum alloc_kind kind)
{
    uintptr_t cookie = cookie_start(addr, kind);
    fill_canary(canary_start(addr, head), cookie);
    if (cookie < addr)               /* one store, not a call, on every allocation */
        memset((void *)cookie, 0, ARRAY_COOKIE_SIZE);
}

/* The overwritten byte of b's head redzone below `end` nearest the block, or 0. `end` is
 * the block's start or below the cookie (the quarantine's tag covers it). */
static uintptr_t head_damage(const struct block *b, uintptr_t end)
{
    _Static_assert(ARRAY_COOKIE_SIZE == sizeof(uint64_t), "the cookie is read as one word");
    uintptr_t cookie = cookie_start(b->addr, (enum alloc_kind)b->kind);
    uint64_t word;
    if (end > cookie) {
        memcpy(&word, (const void *)cookie, sizeof word);
        if (word)
            return cookie + (unsigned)(63 - __builtin_clzll(word)) / 8;
    }
    return find_bad_canary(head_canary_start(b), end < cookie ? end : cookie, true);
}

/* Reports the overwritten redzone bytes of b nearest it (0: intact), found while `stack`
 * ran (a free, an eviction, or exit). */
__attribute__((cold))
static void report_redzone_writes(const struct block *b, uint32_t stack, uintptr_t bad_before,
                                  uintptr_t bad_after)
{
    for (int side = 0; side < 2; side++) {
        uintptr_t bad = side ? bad_after : bad_before;
        if (!bad)
            continue;
        struct error_event e = {
            .kind = side ? ERROR_HEAP_OVERFLOW : ERROR_HEAP_UNDERFLOW, .tid = runtime_tid(),
            .addr = bad, .stack = stack, .op = ACCESS_WRITE, .access_size = 1,
            .has_block = true, .block = b->addr, .block_size = b->size,
            .alloc_stack = b->alloc_stack, .alloc_kind = b->kind, .free_kind = -1,
        };
        eventlog_error(&e);
    }
}

/* b's header word no longer checks: a write 9 to 24 bytes before the block (into the word
 * or glibc's chunk header before it), which left neither its size nor its stack. */
__attribute__((cold))
static void report_damaged_header(const struct block *b, uint32_t stack)
{
    struct error_event e = {
        .kind = ERROR_HEAP_UNDERFLOW, .tid = runtime_tid(), .addr = b->addr - BLOCK_REDZONE,
        .stack = stack, .op = ACCESS_WRITE, .access_size = BLOCK_HEADER_SIZE, .has_block = true,
        .block = b->addr, .size_unknown = true, .alloc_kind = -1, .free_kind = -1,
    };
    eventlog_error(&e);
}

static uintptr_t tail_damage(const struct block *b)
{
    return find_bad_canary(b->addr + b->size, b->addr + b->size + BLOCK_REDZONE, false);
}

/* A damaged redzone is reported once: refilled, it only shows later writes (the block's
 * quarantine and exit checks look again). */
static void check_redzones(const struct block *b, uint32_t stack)
{
    if (b->flags & BLOCK_HEADER_DAMAGED) {
        report_damaged_header(b, stack);
        return;
    }
    uintptr_t bad_before = head_damage(b, b->addr);
    uintptr_t bad_after = tail_damage(b);
    if (!(bad_before | bad_after))
        return;
    report_redzone_writes(b, stack, bad_before, bad_after);
    if (bad_before)
        fill_head(b->addr, head_size(b), (enum alloc_kind)b->kind);
    if (bad_after)
        fill_canary(b->addr + b->size, b->addr + b->size + BLOCK_REDZONE);
}

static size_t watched_words(size_t size)
{
    return size < WATCHED_WORDS * 8 ? (size + 7) / 8 : WATCHED_WORDS;
}

/* Word i of the block at p, the bytes past its end as zeros. */
static uint64_t watched_word(const uint8_t *p, size_t size, size_t i)
{
    uint64_t word = 0;
    if (size - i * 8 >= 8)
        memcpy(&word, p + i * 8, 8);     /* one load, not a call */
    else
        for (size_t k = 0; k < size - i * 8; k++)
            word |= (uint64_t)p[i * 8 + k] << (8 * k);
    return word;
}

static uint16_t word_hash(uint64_t word, size_t i)
{
    return (uint16_t)(((word ^ i) * 0x9e3779b97f4a7c15ull) >> 48);
}

/* At the free: what a stale write will be told from. */
static void hash_watched_words(struct block *b)
{
    for (size_t i = 0; i < watched_words(b->size); i++)
        b->word_hashes[i] = word_hash(watched_word((const uint8_t *)b->addr, b->size, i), i);
}

static void report_stale_write(const struct block *b, size_t offset, size_t size)
{
    struct error_event e = {
        .kind = ERROR_USE_AFTER_FREE, .tid = runtime_tid(), .addr = b->addr + offset,
        .stack = b->free_stack, .op = ACCESS_WRITE, .access_size = size,
        .has_block = true, .block = b->addr, .block_size = b->size,
        .alloc_stack = b->alloc_stack, .free_stack = b->free_stack,
        .alloc_kind = b->kind, .free_kind = -1,
    };
    eventlog_error(&e);
}

/* A write through a stale pointer, seen when the block leaves the quarantine: the first
 * byte that is not the --free-fill byte, or the first word whose hash changed. */
static void check_stale_writes(const struct block *b)
{
    const uint8_t *p = (const uint8_t *)b->addr;
    if (runtime_options.free_fill == FILL_OFF) {
        for (size_t i = 0; i < watched_words(b->size); i++)
            if (word_hash(watched_word(p, b->size, i), i) != b->word_hashes[i]) {
                report_stale_write(b, i * 8, b->size - i * 8 < 8 ? b->size - i * 8 : 8);
                return;
            }
        return;
    }
    uint8_t want = (uint8_t)runtime_options.free_fill;
    uint64_t want_word = want * 0x0101010101010101ull, word;
    size_t i = 0;
    for (; i + 8 <= b->size; i += 8) {       /* whole words first: the usual case is intact */
        memcpy(&word, p + i, 8);
        if (word != want_word)
            break;
    }
    for (; i < b->size; i++)
        if (p[i] != want) {
            report_stale_write(b, i, 1);
            return;
        }
}

/* ----------------------------------------------------------------------------------
 * Placing a block
 * -------------------------------------------------------------------------------- */

/* Whether the program is still within its first AUTO_GUARD_ALL allocations; once past them,
 * one load answers. */
static bool among_first_allocations(void)
{
    static bool past;
    if (__atomic_load_n(&past, __ATOMIC_RELAXED))
        return false;
    struct heap_totals t;
    heap_totals(&t);
    if (t.allocs < AUTO_GUARD_ALL)
        return true;
    __atomic_store_n(&past, true, __ATOMIC_RELAXED);
    return false;
}

static bool should_guard(uint32_t stack)
{
    int mode = runtime_options.guard;
    if (!guard_ready || mode == GUARD_NONE)
        return false;
    if (mode != GUARD_AUTO)
        return ++runtime_thread.sample_tick % (unsigned)mode == 0;
    if (!stack || !site_counts)
        return false;
    /* Past the floor a site stops counting: threads allocating from one hot site would
     * otherwise fight over its counter's cache line. Its 1-in-AUTO_SITE_FLOOR sample
     * then comes from the thread's own tick. */
    uint32_t n = __atomic_load_n(&site_counts[stack], __ATOMIC_RELAXED);
    bool site_wants;
    if (n < AUTO_SITE_FLOOR) {
        n = __atomic_add_fetch(&site_counts[stack], 1, __ATOMIC_RELAXED);
        site_wants = n <= AUTO_FIRST_PER_SITE || !(n & (n - 1));
    } else {
        site_wants = ++runtime_thread.sample_tick % AUTO_SITE_FLOOR == 0;
    }
    if (!site_wants)
        return among_first_allocations();
    struct heap_totals t;
    heap_totals(&t);
    if (t.guarded < AUTO_FREE_START)
        return true;
    return t.guarded * AUTO_RATIO < t.allocs &&
           (n <= AUTO_FIRST_PER_SITE ||
            guard_cost_ns() * 100 < GUARD_BUDGET_PERCENT * os_clock_ns(CLOCK_PROCESS_CPUTIME_ID));
}

static void *alloc_redzoned(size_t size, size_t align, enum alloc_kind kind, uint8_t *head_shift)
{
    size_t head = BLOCK_REDZONE;
    *head_shift = BLOCK_REDZONE_SHIFT;
    while (head < align) {
        head <<= 1;
        ++*head_shift;
    }
    size_t slot = (head + size + BLOCK_REDZONE + SLAB_SLOT_STEP - 1) & ~(size_t)(SLAB_SLOT_STEP - 1);
    uint8_t *raw = NULL;
    if (slab_ready && align <= 16 && size <= SLAB_MAX_SLOT && slot <= SLAB_MAX_SLOT)
        raw = slab_alloc(slot);
    if (!raw)
        raw = align > 16 ? __libc_memalign(align, head + size + BLOCK_REDZONE)
                         : __libc_malloc(head + size + BLOCK_REDZONE);
    if (!raw)
        return NULL;
    fill_head((uintptr_t)raw + head, head, kind);
    fill_canary((uintptr_t)raw + head + size, (uintptr_t)raw + head + size + BLOCK_REDZONE);
    return raw + head;
}

static void release_redzoned(const struct block *b)
{
    uintptr_t raw = b->addr - head_size(b);
    if (slab_owns(raw))
        slab_free((void *)raw);
    else
        __libc_free((void *)raw);
}

/* Makes and records a block; NULL (errno ENOMEM) when no memory. */
static void *place(size_t size, size_t align, enum alloc_kind kind, uint32_t stack)
{
    struct block b = {.size = size, .alloc_stack = stack, .tid = (uint32_t)runtime_tid(),
                      .kind = (uint8_t)kind};
    void *p = NULL;

    if (should_guard(stack)) {
        p = guard_alloc(size, align, stack, kind, runtime_tid());
        if (p)
            b.flags |= BLOCK_GUARDED;
    }
    if (!p)
        p = alloc_redzoned(size, align, kind, &b.head_shift);
    if (!p) {
        errno = ENOMEM;
        return NULL;
    }
    b.addr = (uintptr_t)p;
    if (!blocks_insert(&b)) {
        /* The table could not grow (its pool is out of memory): a block it does not know
         * would be misreported at its free, so the program gets none, as glibc gives none
         * out of memory. */
        struct guard_info info;
        if (b.flags & BLOCK_GUARDED)
            guard_free(p, kind, stack, runtime_tid(), &info);
        else
            release_redzoned(&b);
        errno = ENOMEM;
        return NULL;
    }
    if (runtime_options.malloc_fill != FILL_OFF)
        memset(p, runtime_options.malloc_fill, size);
    if (b.flags & BLOCK_GUARDED)
        __atomic_fetch_add(&guarded_counts[(unsigned)runtime_tid() % COUNTER_SHARDS].n, 1,
                           __ATOMIC_RELAXED);
    return p;
}

/* ----------------------------------------------------------------------------------
 * Errors
 * -------------------------------------------------------------------------------- */

/* A size argument valgrind calls fishy (negative as a signed number), named as valgrind
 * names the call and the argument; or calloc's product past that (times: its size). */
struct fishy_call {
    const char *function, *argument;
    uint64_t value, times;
};

static void report_fishy_size(const struct fishy_call *call, enum alloc_kind kind, uint32_t stack)
{
    struct error_event e = {
        .kind = ERROR_INVALID_SIZE, .tid = runtime_tid(), .stack = stack,
        .alloc_kind = (int)kind, .free_kind = -1, .has_requested = true, .requested = call->value,
        .function = call->function, .argument = call->argument, .times = call->times,
    };
    eventlog_error(&e);
}

static void report_bad_free(enum error_kind kind, uintptr_t addr, enum alloc_kind free_kind,
                            uint32_t stack, const struct block *b)
{
    struct error_event e = {
        .kind = kind, .tid = runtime_tid(), .addr = addr, .stack = stack,
        .alloc_kind = b ? b->kind : -1, .free_kind = (int)free_kind,
    };
    if (b) {
        e.has_block = true;
        e.block = b->addr;
        e.block_size = b->size;
        e.alloc_stack = b->alloc_stack;
        e.free_stack = b->state == BLOCK_FREED ? b->free_stack : 0;
    } else {
        uintptr_t lo, hi;
        e.on_stack = unwind_cache_stack_bounds(&lo, &hi) && addr >= lo && addr < hi;
    }
    eventlog_error(&e);
}

static void report_guard_free(enum guard_free_result r, uintptr_t addr, enum alloc_kind kind,
                              uint32_t stack, const struct guard_info *info)
{
    struct block b = {.addr = info->block, .size = info->size, .alloc_stack = info->alloc_stack,
                      .free_stack = info->free_stack, .kind = (uint8_t)info->alloc_kind,
                      .state = info->state == GUARD_BLOCK_FREED ? BLOCK_FREED : BLOCK_LIVE};
    bool known = info->state != GUARD_BLOCK_NONE;
    if (r == GUARD_FREE_DOUBLE_FREE) {
        report_bad_free(ERROR_DOUBLE_FREE, addr, kind, stack, &b);
    } else if (r == GUARD_FREE_NOT_A_BLOCK_START) {
        report_bad_free(ERROR_INVALID_FREE, addr, kind, stack, known ? &b : NULL);
    } else if (r == GUARD_FREE_CANARY_CORRUPT) {
        struct error_event e = {
            .kind = info->access == GUARD_ACCESS_UNDERFLOW ? ERROR_HEAP_UNDERFLOW : ERROR_HEAP_OVERFLOW,
            .tid = runtime_tid(), .addr = info->bad_addr, .stack = stack, .op = ACCESS_WRITE,
            .access_size = 1, .has_block = true, .block = info->block, .block_size = info->size,
            .alloc_stack = info->alloc_stack, .alloc_kind = info->alloc_kind, .free_kind = -1,
        };
        eventlog_error(&e);
    }
}

/* ----------------------------------------------------------------------------------
 * Release
 * -------------------------------------------------------------------------------- */

/* A block leaving the quarantine (or still in it at exit): its free pattern, its tag and
 * the rest of its redzones must be as they were left. */
static void check_quarantined(const struct block *b, struct quarantine_place place, void *ctx)
{
    (void)ctx;
    check_stale_writes(b);
    uintptr_t bad_before = quarantine_tag_damage(b, place);
    if (!bad_before)
        bad_before = head_damage(b, b->addr - QUARANTINE_TAG_SIZE);
    uintptr_t bad_after = tail_damage(b);
    if (bad_before | bad_after)
        report_redzone_writes(b, b->free_stack, bad_before, bad_after);
}

/* Starts loading what the quarantine checks of a block leaving it (its tag, the end of
 * its watched words, its tail redzone) and its bitmap word, which glibc's next malloc of the
 * chunk will set (glibc's caches hand out the latest freed chunk first). */
static void prefetch_leaving(uintptr_t addr, size_t size)
{
    __builtin_prefetch((const void *)(addr - QUARANTINE_TAG_SIZE));
    __builtin_prefetch((const void *)(addr + watched_words(size) * 8 - 1));
    __builtin_prefetch((const void *)(addr + size));
    blocks_prefetch(addr);
}

/* The redzoned block b (out of the table, BLOCK_FREED) goes into the quarantine; whatever
 * that pushes out is checked and given back to glibc. (Prefetching the next batch's
 * blocks a few frees ahead cost more than it saved on python3: most of them miss the TLB.) */
static void quarantine_block(const struct block *b)
{
    static __thread unsigned frees_since_fit __attribute__((tls_model("initial-exec")));
    if (++frees_since_fit >= QUARANTINE_FIT_INTERVAL) {
        frees_since_fit = 0;
        quarantine_fit_to_heap(blocks_live_bytes());
    }
    struct quarantine_evicted evicted[QUARANTINE_EVICT_MAX];
    size_t n = quarantine_push((unsigned)runtime_tid(), b, evicted);
    for (size_t i = 0; i < n; i++)
        prefetch_leaving(evicted[i].block.addr, evicted[i].block.size);
    for (size_t i = 0; i < n; i++) {
        check_quarantined(&evicted[i].block, evicted[i].place, NULL);
        release_redzoned(&evicted[i].block);
    }
}

/* Pages the program mprotect'ed inside a live block of its own (a buffer made read-only, a
 * guard page of its own making): memtrace opens them again before it reads the block at
 * its free, which the program need not have done (glibc's free of an mmapped chunk never
 * reads it). Few by nature: the hot path reads only the count. */
#define PROTECTED_MAX 64
static struct spinlock protected_lock;
static struct { uintptr_t lo, hi; } protected_ranges[PROTECTED_MAX];
static unsigned protected_count;

/* [lo, hi) is now prot: ranges inside it are superseded; kept unless read-write again. */
static void note_protected(uintptr_t lo, uintptr_t hi, int prot)
{
    unsigned n = 0;
    os_lock(&protected_lock);
    for (unsigned i = 0; i < protected_count; i++)
        if (protected_ranges[i].lo < lo || protected_ranges[i].hi > hi)
            protected_ranges[n++] = protected_ranges[i];
    if ((prot & (PROT_READ | PROT_WRITE)) != (PROT_READ | PROT_WRITE) && n < PROTECTED_MAX) {
        protected_ranges[n].lo = lo;
        protected_ranges[n++].hi = hi;
    }
    __atomic_store_n(&protected_count, n, __ATOMIC_RELEASE);
    os_unlock(&protected_lock);
}

static void open_protected_pages(const struct block *b)
{
    unsigned n = 0;
    if (__atomic_load_n(&protected_count, __ATOMIC_ACQUIRE) == 0)
        return;
    os_lock(&protected_lock);
    for (unsigned i = 0; i < protected_count; i++) {
        if (protected_ranges[i].lo >= b->addr && protected_ranges[i].hi <= b->addr + b->size)
            os_mprotect((void *)protected_ranges[i].lo, protected_ranges[i].hi - protected_ranges[i].lo,
                        PROT_READ | PROT_WRITE);
        else
            protected_ranges[n++] = protected_ranges[i];
    }
    __atomic_store_n(&protected_count, n, __ATOMIC_RELEASE);
    os_unlock(&protected_lock);
}

/* Frees ptr as `kind`, with `stack` as the free stack. */
static void release(void *ptr, enum alloc_kind kind, uint32_t stack)
{
    struct block b;

    if (!blocks_release((uintptr_t)ptr, &b)) {
        struct guard_info info;
        enum guard_free_result gr;
        if (nested_free(ptr))
            return;
        if (guard_ready && guard_owns((uintptr_t)ptr) &&
            (gr = guard_free(ptr, kind, stack, runtime_tid(), &info)) != GUARD_FREE_OK) {
            report_guard_free(gr, (uintptr_t)ptr, kind, stack, &info);
            return;
        }
        bool waiting = quarantine_find((uintptr_t)ptr, &b);
        bool near = !waiting && blocks_find_near((uintptr_t)ptr, &b);
        report_bad_free(waiting ? ERROR_DOUBLE_FREE : ERROR_INVALID_FREE, (uintptr_t)ptr, kind, stack,
                        waiting || near ? &b : NULL);
        return;
    }
    if (b.flags & BLOCK_HEADER_DAMAGED) {    /* glibc's header may be hit too: not freed */
        check_redzones(&b, stack);
        return;
    }
    if (b.kind != kind)
        report_bad_free(ERROR_MISMATCHED_FREE, (uintptr_t)ptr, kind, stack, &b);
    open_protected_pages(&b);
    if (b.flags & BLOCK_GUARDED) {
        struct guard_info info;
        if (runtime_options.free_fill != FILL_OFF)   /* seen only with --continue-after-fault */
            memset(ptr, runtime_options.free_fill, b.size);
        enum guard_free_result gr = guard_free(ptr, kind, stack, runtime_tid(), &info);
        report_guard_free(gr, (uintptr_t)ptr, kind, stack, &info);
        return;
    }
    check_redzones(&b, stack);
    if (runtime_options.quarantine_size == 0) {   /* it would leave at once, checked for nothing */
        if (runtime_options.free_fill != FILL_OFF)
            memset(ptr, runtime_options.free_fill, b.size);
        release_redzoned(&b);
        return;
    }
    /* Out of the table lock (a fork meanwhile leaves the child a block that is in neither
     * the table nor the quarantine: unchecked, not misreported); before the push, since
     * another thread's eviction may check the block at once. */
    if (runtime_options.free_fill != FILL_OFF)
        memset(ptr, runtime_options.free_fill, b.size);
    else
        hash_watched_words(&b);
    b.state = BLOCK_FREED;
    b.free_stack = stack;
    quarantine_block(&b);
}

/* ----------------------------------------------------------------------------------
 * Entry points
 * -------------------------------------------------------------------------------- */

/* Allocations made while memtrace itself runs on this thread (its own dlopen, or a signal
 * handler that interrupted it): never through memtrace's or glibc's locks (src/nested.h). */
static void *alloc_nested(size_t size, size_t align)
{
    if (!runtime_tables_ready())
        return align ? __libc_memalign(align, size) : __libc_malloc(size);
    void *p = nested_alloc(size, align);
    if (!p)
        errno = ENOMEM;
    return p;
}

/* Sets up the calling thread for a tracked call; false when it must be nested. */
static bool enter(void)
{
    if (!runtime_ensure_ready() || runtime_thread.busy)
        return false;
    runtime_thread.busy = 1;
    if (!runtime_thread.exit_hooked) {
        fault_thread_init();
        runtime_thread_start();
    }
    return true;
}

static void leave(void)
{
    runtime_leave();
}

/* valgrind's name for an allocation call, as its size check reports it. */
static const char *fishy_function(enum alloc_kind kind, size_t align)
{
    if (kind == ALLOC_NEW)
        return align ? "__builtin_new_aligned" : "__builtin_new";
    if (kind == ALLOC_NEW_ARRAY)
        return align ? "__builtin_vec_new_aligned" : "__builtin_vec_new";
    return align ? "memalign" : "malloc";
}

/* A block for a tracked call (named `function` in a report; NULL: by its kind), or NULL
 * after reporting a fishy size (errno ENOMEM). */
static void *alloc_checked(size_t size, size_t align, enum alloc_kind kind, uint32_t stack,
                           const char *function)
{
    if (size > FISHY_SIZE) {
        if (!function)
            function = fishy_function(kind, align);
        report_fishy_size(&(struct fishy_call){function, "size", size, 0}, kind, stack);
        errno = ENOMEM;
        return NULL;
    }
    return place(size, align, kind, stack);
}

void *heap_alloc(size_t size, size_t align, enum alloc_kind kind)
{
    if (!enter())
        return alloc_nested(size, align);
    void *p = alloc_checked(size, align, kind, stacks_capture(runtime_options.num_callers), NULL);
    leave();
    return p;
}

/* Whether calloc's new block is zero already. A chunk glibc mmapped for it is fresh from
 * the kernel, as glibc's own calloc relies on (a sparse 1 GB calloc touched all of it
 * otherwise); a glibc asked to perturb fills it with one nonzero byte instead, which its
 * ends show. A guarded block is zero-filled by guard_alloc. */
static bool already_zero(const uint8_t *p, size_t size)
{
    if (runtime_options.malloc_fill != FILL_OFF || size == 0)
        return false;
    if (guard_ready && guard_owns((uintptr_t)p))
        return true;
    if (slab_owns((uintptr_t)p))
        return false;
    size_t chunk_size_word = *(const size_t *)(p - BLOCK_REDZONE - sizeof(size_t));
    return (chunk_size_word & GLIBC_IS_MMAPPED) && p[0] == 0 && p[size - 1] == 0;
}

/* calloc's arguments as valgrind checks them, then their product, which valgrind's calloc
 * refuses without a report (ASan reports it). False: nothing fishy. */
static bool calloc_is_fishy(size_t count, size_t size, size_t total, struct fishy_call *call)
{
    if (count > FISHY_SIZE)
        *call = (struct fishy_call){"calloc", "nmemb", count, 0};
    else if (size > FISHY_SIZE)
        *call = (struct fishy_call){"calloc", "size", size, 0};
    else if (total > FISHY_SIZE)
        *call = (struct fishy_call){"calloc", "nmemb*size", count, size};
    return count > FISHY_SIZE || size > FISHY_SIZE || total > FISHY_SIZE;
}

void *heap_calloc(size_t count, size_t size)
{
    size_t total;
    struct fishy_call fishy;
    void *p;
    if (__builtin_mul_overflow(count, size, &total))
        total = SIZE_MAX;
    if (!enter()) {
        p = total > FISHY_SIZE ? NULL : alloc_nested(total, 0);
    } else if (calloc_is_fishy(count, size, total, &fishy)) {
        report_fishy_size(&fishy, ALLOC_MALLOC, stacks_capture(runtime_options.num_callers));
        leave();
        errno = ENOMEM;
        return NULL;
    } else {
        p = alloc_checked(total, 0, ALLOC_MALLOC, stacks_capture(runtime_options.num_callers),
                          "calloc");
        leave();
        if (p && already_zero(p, total))
            return p;
    }
    if (p)
        memset(p, 0, total);
    return p;
}

/* A free while memtrace runs on this thread. Memory from before the block table existed
 * is glibc's; a block the table knows cannot be touched while this thread holds one of
 * memtrace's locks (a signal handler that interrupted it): it is left alone, not freed.
 * So is a block in a slab slot: the thread's slab cache may be half changed. */
static void free_nested(void *ptr, enum alloc_kind kind)
{
    struct block b;
    if (!runtime_tables_ready()) {
        __libc_free(ptr);
        return;
    }
    if (nested_free(ptr) || os_locks_held() > 0)
        return;
    if (blocks_release((uintptr_t)ptr, &b)) {      /* counted as freed, as it is */
        if (b.flags & BLOCK_GUARDED) {
            struct guard_info info;
            guard_free(ptr, kind, 0, runtime_tid(), &info);
        } else if (!(b.flags & BLOCK_HEADER_DAMAGED) && !slab_owns(b.addr)) {
            release_redzoned(&b);
        }
    }
}

void heap_free(void *ptr, enum alloc_kind kind)
{
    if (!ptr)
        return;
    if (!enter()) {
        free_nested(ptr, kind);
        return;
    }
    /* Its bitmap word and its head (glibc's size word, the header word, the canary, the
     * pattern's first bytes) load while the stack is taken. */
    blocks_prefetch((uintptr_t)ptr);
    __builtin_prefetch((const uint8_t *)ptr - BLOCK_REDZONE - sizeof(size_t));
    __builtin_prefetch((const uint8_t *)ptr - BLOCK_REDZONE, 1);
    release(ptr, kind, stacks_capture(runtime_options.num_callers));
    leave();
}

/* Whether realloc resizes old through glibc (in place, or moved by glibc with mremap)
 * instead of moving it itself. Moving keeps a stale pointer to the old block from staying
 * valid, but a block past GUARD_MAX_BLOCK is never guarded and its quarantine check sees
 * only its first WATCHED_WORDS words: for such a block a move catches almost nothing and
 * costs a copy into fresh pages (perl grows megabyte buffers this way: 2-3x its run
 * time). --free-fill, which checks every freed byte, keeps the move. */
static bool resizes_in_glibc(const struct block *old, size_t size)
{
    return old->size > GUARD_MAX_BLOCK && size <= FISHY_SIZE && old->kind == ALLOC_MALLOC &&
           !(old->flags & BLOCK_GUARDED) && runtime_options.free_fill == FILL_OFF;
}

/* The block old resized by glibc's realloc, its redzones checked (as a free checks them)
 * and its tail redzone moved to the new end; NULL (the old block kept) without memory.
 * The block leaves the table first: once glibc has it, another thread may get its
 * address. Another thread's free of it meanwhile is reported as the moving path reports
 * it (a double free). */
static void *resize_in_glibc(const struct block *old, size_t size, uint32_t stack)
{
    struct block b;
    check_redzones(old, stack);
    if (!blocks_release(old->addr, &b)) {
        release((void *)old->addr, ALLOC_MALLOC, stack);
        return NULL;
    }
    size_t head = head_size(&b);
    uint8_t *raw = __libc_realloc((void *)(b.addr - head), head + size + BLOCK_REDZONE);
    if (!raw) {
        blocks_insert(&b);
        errno = ENOMEM;
        return NULL;
    }
    uint8_t *p = raw + head;
    if (runtime_options.malloc_fill != FILL_OFF && size > b.size)
        memset(p + b.size, runtime_options.malloc_fill, size - b.size);
    fill_canary((uintptr_t)p + size, (uintptr_t)p + size + BLOCK_REDZONE);
    b.addr = (uintptr_t)p;
    b.size = size;
    b.alloc_stack = stack;
    b.tid = (uint32_t)runtime_tid();
    blocks_insert(&b);
    return p;
}

/* Moves the block, as valgrind does, so that a stale pointer to the old block does not
 * stay valid; but see resizes_in_glibc. */
void *heap_realloc(void *ptr, size_t size)
{
    struct block old;

    if (!ptr)
        return heap_alloc(size, 0, ALLOC_MALLOC);    /* valgrind's realloc too: "malloc" */
    if (size == 0) {
        heap_free(ptr, ALLOC_MALLOC);    /* glibc frees and returns NULL */
        return NULL;
    }
    size_t nested_old;
    bool was_nested = runtime_tables_ready() && nested_size(ptr, &nested_old);
    if (!enter()) {
        /* Not ours (allocated before the table existed): glibc's own realloc. */
        if (!runtime_tables_ready())
            return __libc_realloc(ptr, size);
        if (!was_nested && (os_locks_held() > 0 || !blocks_find((uintptr_t)ptr, &old)))
            return NULL;
        void *p = alloc_nested(size, 0);
        if (p) {
            size_t have = was_nested ? nested_old : old.size;
            memcpy(p, ptr, have < size ? have : size);
            free_nested(ptr, ALLOC_MALLOC);
        }
        return p;
    }
    uint32_t stack = stacks_capture(runtime_options.num_callers);
    void *p = NULL;
    if (was_nested) {
        if ((p = alloc_checked(size, 0, ALLOC_MALLOC, stack, "realloc")) != NULL) {
            memcpy(p, ptr, nested_old < size ? nested_old : size);
            nested_free(ptr);
        }
    } else if (!blocks_find((uintptr_t)ptr, &old) || old.state != BLOCK_LIVE) {
        release(ptr, ALLOC_MALLOC, stack);       /* reports the invalid or double free */
    } else if (old.flags & BLOCK_HEADER_DAMAGED) {
        check_redzones(&old, stack);             /* its size unknown: nothing to copy */
        errno = ENOMEM;
    } else if (resizes_in_glibc(&old, size)) {
        p = resize_in_glibc(&old, size, stack);
    } else if ((p = alloc_checked(size, 0, (enum alloc_kind)old.kind, stack, "realloc")) != NULL) {
        memcpy(p, ptr, old.size < size ? old.size : size);
        release(ptr, (enum alloc_kind)old.kind, stack);
    }
    leave();
    return p;
}

size_t heap_usable_size(void *ptr)
{
    struct block b;
    size_t size;
    if (!ptr || !runtime_tables_ready())
        return 0;
    if (nested_size(ptr, &size))
        return size;
    if (os_locks_held() > 0 || !blocks_find((uintptr_t)ptr, &b) || b.state != BLOCK_LIVE ||
        (b.flags & BLOCK_HEADER_DAMAGED))
        return 0;
    return b.size;
}

static bool is_power_of_two(size_t x)
{
    return x && !(x & (x - 1));
}

int heap_posix_memalign(void **out, size_t align, size_t size)
{
    if (!is_power_of_two(align) || align % sizeof(void *) != 0)
        return EINVAL;
    int saved = errno;
    void *p = heap_alloc(size, align, ALLOC_MALLOC);
    errno = saved;
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

static bool range_has_hole(uintptr_t lo, uintptr_t hi)
{
    unsigned char vec[4096];
    lo &= ~(uintptr_t)4095;
    for (uintptr_t at = lo; at < hi; at += sizeof vec * 4096) {
        size_t chunk = hi - at < sizeof vec * 4096 ? hi - at : sizeof vec * 4096;
        if (mincore((void *)at, chunk, vec) != 0 && errno == ENOMEM)
            return true;
    }
    return false;
}

struct range_query {
    uintptr_t lo, hi;
    bool overlaps;
};

static void note_overlap(uintptr_t start, size_t len, void *ctx)
{
    struct range_query *q = ctx;
    q->overlaps |= start < q->hi && q->lo < start + len;
}

/* Whether [lo, hi) reaches into memtrace's pool, the guarded pool or the slab: range
 * against range (page by page, an 8 GiB reservation's mprotect took 60 ms). */
static bool pool_overlaps(uintptr_t lo, uintptr_t hi)
{
    struct range_query q = {lo, hi, false};
    pool_for_each_arena(&runtime_pool, note_overlap, &q);
    return q.overlaps || guard_overlaps(lo, hi) || slab_overlaps(lo, hi);
}

/* Whether the pages [lo, page_end) all lie inside one live block: one that starts at lo,
 * or a guarded one around it (a block elsewhere in glibc's heap is not memtrace's memory:
 * heap_check_unmap lets its inner pages be). */
static bool pages_inside_block(uintptr_t lo, uintptr_t page_end)
{
    struct block b;
    struct guard_info info;
    if (blocks_find(lo, &b) && b.state == BLOCK_LIVE && !(b.flags & BLOCK_HEADER_DAMAGED))
        return page_end <= b.addr + b.size;
    return guard_ready && guard_describe(lo, &info) && info.state == GUARD_BLOCK_LIVE &&
           info.block <= lo && page_end <= info.block + info.size;
}

bool heap_check_mprotect(void *addr, size_t len, int prot)
{
    uintptr_t lo = (uintptr_t)addr, hi = lo + len;
    if (len == 0 || hi < lo || !enter())
        return true;
    uintptr_t page_end = (hi + 4095) & ~(uintptr_t)4095;   /* what the kernel changes */
    bool inside = pages_inside_block(lo, page_end);
    if (inside)
        note_protected(lo, page_end, prot);
    leave();
    return inside || heap_check_unmap(addr, len, true);
}

bool heap_check_unmap(void *addr, size_t len, bool is_mprotect)
{
    uintptr_t lo = (uintptr_t)addr, hi = lo + len;
    struct block b;
    bool ours, heap, hole;

    if (len == 0 || hi < lo || !enter())
        return true;
    int saved = errno;
    ours = pool_overlaps(lo, hi);
    heap = !ours && blocks_find(lo, &b) && b.state == BLOCK_LIVE;
    hole = !ours && !heap && !is_mprotect && range_has_hole(lo, hi);
    errno = saved;
    if (ours || heap || hole) {
        struct error_event e = {
            .kind = ERROR_INVALID_MUNMAP, .tid = runtime_tid(), .addr = lo,
            .stack = stacks_capture(runtime_options.num_callers),
            .alloc_kind = heap ? b.kind : -1, .free_kind = -1,
            .has_requested = true, .requested = len,
        };
        if (heap) {
            e.has_block = true;
            e.block = b.addr;
            e.block_size = b.size;
            e.alloc_stack = b.alloc_stack;
        }
        eventlog_error(&e);
    }
    leave();
    return !(ours || heap);
}

static void check_live_block(const struct block *b, void *ctx)
{
    struct guard_info info;
    (void)ctx;
    if (b->flags & BLOCK_GUARDED) {
        if (b->state == BLOCK_LIVE && !guard_check((const void *)b->addr, &info))
            report_guard_free(GUARD_FREE_CANARY_CORRUPT, b->addr, (enum alloc_kind)b->kind, 0, &info);
    } else {
        check_redzones(b, 0);
    }
}

void heap_check_all(void)
{
    blocks_for_each(check_live_block, NULL);
    quarantine_for_each(check_quarantined, NULL);
}
