/* slab.c — size-class slots for small redzoned blocks (see slab.h). */
#include "slab.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "os.h"

#define CLASS_COUNT ((SLAB_MAX_SLOT - SLAB_MIN_SLOT) / SLAB_SLOT_STEP + 1)
/* Each class's region: 1 GiB (63 GiB of address space in all, PROT_NONE until carved),
 * else 256 or 64 MiB when the system refuses that much. A full region sends its class's
 * blocks to glibc. */
#define REGION_SHIFT_LARGE 30
#define REGION_SHIFT_SMALL 26
#define COMMIT_STEP ((uintptr_t)1 << 20)
/* Slots start this far into their region, so that a write a little before the region's
 * first block (which glibc's chunk header would have taken) lands in writable memory,
 * not in the region before it, PROT_NONE while unused. */
#define REGION_LEAD 4096
/* A batch moving between a thread's cache and the central stack: about this many bytes
 * of slots, within these counts. A cache holds up to two batches a class. */
#define BATCH_BYTES 4096
#define BATCH_MIN 4
#define BATCH_MAX 64

struct slab_range slab_range;
static unsigned region_shift;
static size_t writable_bytes;        /* of the reservation, counted while a limit is set */

/* A free slot's first words: the next slot of its batch and, in a batch's first slot,
 * the next batch on the central stack and the batch's length. */
struct free_slot {
    struct free_slot *next;
    struct free_slot *next_batch;
    size_t count;
};
_Static_assert(sizeof(struct free_slot) <= SLAB_MIN_SLOT, "a free slot's links fit the smallest slot");

struct central {
    struct spinlock lock;
    struct free_slot *batches;
    uintptr_t carved;                /* the next slot never handed out */
    uintptr_t writable_end;          /* the end of the writable part of the region */
} __attribute__((aligned(64)));

static struct central centrals[CLASS_COUNT];
static uint8_t batch_lengths[CLASS_COUNT];   /* a division on every free, worked out once */

struct cache {
    struct free_slot *head;
    uint32_t count;
};

static __thread struct cache thread_caches[CLASS_COUNT] __attribute__((tls_model("initial-exec")));
static __thread bool thread_gone __attribute__((tls_model("initial-exec")));

static size_t class_slot_size(unsigned c)
{
    return SLAB_MIN_SLOT + (size_t)c * SLAB_SLOT_STEP;
}

static uintptr_t region_start(unsigned c)
{
    return slab_range.lo + ((uintptr_t)c << region_shift);
}

static uint8_t batch_length(unsigned c)
{
    size_t n = BATCH_BYTES / class_slot_size(c);
    return n < BATCH_MIN ? BATCH_MIN : n > BATCH_MAX ? BATCH_MAX : (uint8_t)n;
}

/* The process's address space in bytes (VmSize), or SIZE_MAX when unknown. */
static size_t address_space_bytes(void)
{
    size_t pages = os_read_number("/proc/self/statm");
    return pages ? pages * (size_t)sysconf(_SC_PAGESIZE) : SIZE_MAX;
}

/* RLIMIT_AS as last seen, and how much of the reservation was writable then. */
static struct {
    struct spinlock lock;
    rlim_t limit;
    size_t writable_then;
} address_limit = {.limit = RLIM_INFINITY};

/* Whether making len more bytes writable keeps the process within RLIMIT_AS, the slots
 * made writable since the limit was set counted as new mappings would be: a program that
 * limits its address space after memtrace reserved it (to what it has now and a little
 * more) must still see malloc fail, if later than it would have: glibc, which only the
 * kernel limits, may still take the headroom the slots took. */
static bool within_address_limit(size_t len)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_AS, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY)
        return true;
    os_lock(&address_limit.lock);
    if (limit.rlim_cur != address_limit.limit) {
        address_limit.limit = limit.rlim_cur;
        address_limit.writable_then = writable_bytes;
    }
    size_t grown = writable_bytes - address_limit.writable_then, used = address_space_bytes();
    bool within = used <= limit.rlim_cur && grown + len <= limit.rlim_cur - used;
    if (within)
        writable_bytes += len;
    os_unlock(&address_limit.lock);
    return within;
}

/* No reservation under a limit on the address space (ulimit -v): it would take most of
 * the limit from the program. */
bool slab_init(void)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_AS, &limit) != 0 || limit.rlim_cur != RLIM_INFINITY)
        return false;
    for (unsigned shift = REGION_SHIFT_LARGE; shift >= REGION_SHIFT_SMALL; shift -= 2) {
        size_t len = (size_t)CLASS_COUNT << shift;
        void *base = os_mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (base == MAP_FAILED)
            continue;
        region_shift = shift;
        slab_range = (struct slab_range){(uintptr_t)base, (uintptr_t)base + len};
        for (unsigned c = 0; c < CLASS_COUNT; c++) {
            centrals[c] = (struct central){.carved = region_start(c) + REGION_LEAD,
                                           .writable_end = region_start(c)};
            batch_lengths[c] = batch_length(c);
        }
        return true;
    }
    return false;
}

size_t slab_slot_size(uintptr_t addr)
{
    return class_slot_size((unsigned)((addr - slab_range.lo) >> region_shift));
}

bool slab_overlaps(uintptr_t lo, uintptr_t hi)
{
    return lo < slab_range.hi && slab_range.lo < hi;
}

/* Up to n slots never used before, linked in address order; NULL when the region is
 * full or cannot be made writable. Under the class's lock. */
static struct free_slot *carve(unsigned c, unsigned n, uint32_t *count)
{
    struct central *k = &centrals[c];
    size_t slot = class_slot_size(c);
    uintptr_t end = region_start(c) + ((uintptr_t)1 << region_shift);
    if ((end - k->carved) / slot < n)
        n = (unsigned)((end - k->carved) / slot);
    if (n == 0)
        return NULL;
    uintptr_t want = k->carved + n * slot;
    if (want > k->writable_end) {
        uintptr_t to = (want + COMMIT_STEP - 1) & ~(COMMIT_STEP - 1);
        to = to < end ? to : end;
        if (!within_address_limit(to - k->writable_end) ||
            os_mprotect((void *)k->writable_end, to - k->writable_end, PROT_READ | PROT_WRITE) != 0)
            return NULL;
        k->writable_end = to;
    }
    struct free_slot *first = (struct free_slot *)k->carved;
    for (unsigned i = 0; i < n; i++) {
        struct free_slot *s = (struct free_slot *)(k->carved + i * slot);
        s->next = i + 1 < n ? (struct free_slot *)((uintptr_t)s + slot) : NULL;
    }
    k->carved = want;
    *count = n;
    return first;
}

/* Fills the empty cache of class c with a batch from the central stack, or new slots. */
static struct free_slot *refill(unsigned c, struct cache *cache)
{
    struct central *k = &centrals[c];
    os_lock(&k->lock);
    struct free_slot *batch = k->batches;
    if (batch) {
        k->batches = batch->next_batch;
        cache->count = (uint32_t)batch->count;
    } else {
        batch = carve(c, batch_lengths[c], &cache->count);
    }
    os_unlock(&k->lock);
    cache->head = batch;
    return batch;
}

static void push_batch(unsigned c, struct free_slot *first, size_t count)
{
    struct central *k = &centrals[c];
    first->count = count;
    os_lock(&k->lock);
    first->next_batch = k->batches;
    k->batches = first;
    os_unlock(&k->lock);
}

void *slab_alloc(size_t slot_size)
{
    unsigned c = (unsigned)((slot_size - SLAB_MIN_SLOT) / SLAB_SLOT_STEP);
    struct cache *cache = &thread_caches[c];
    struct free_slot *s = cache->head;
    if (__builtin_expect(s == NULL, 0) && (s = refill(c, cache)) == NULL)
        return NULL;
    cache->head = s->next;
    cache->count--;
    return s;
}

/* Hands all but the cache's first `keep` slots to the central stack: the first are the
 * latest freed, still warm, and the thread's next allocations take them. */
static void flush(unsigned c, struct cache *cache, unsigned keep)
{
    struct free_slot *batch = cache->head;
    if (keep) {
        struct free_slot *last_kept = cache->head;
        for (unsigned i = 1; i < keep; i++)
            last_kept = last_kept->next;
        batch = last_kept->next;
        last_kept->next = NULL;
    } else {
        cache->head = NULL;
    }
    push_batch(c, batch, cache->count - keep);
    cache->count = keep;
}

void slab_free(void *slot)
{
    unsigned c = (unsigned)(((uintptr_t)slot - slab_range.lo) >> region_shift);
    struct free_slot *s = slot;
    if (__builtin_expect(thread_gone, 0)) {
        s->next = NULL;
        push_batch(c, s, 1);
        return;
    }
    struct cache *cache = &thread_caches[c];
    s->next = cache->head;
    cache->head = s;
    unsigned n = batch_lengths[c];
    if (++cache->count >= 2 * n)
        flush(c, cache, cache->count - n);
}

void slab_thread_exit(void)
{
    if (slab_range.lo == slab_range.hi)
        return;
    for (unsigned c = 0; c < CLASS_COUNT; c++) {
        struct cache *cache = &thread_caches[c];
        if (cache->count)
            flush(c, cache, 0);
    }
    thread_gone = true;
}

void slab_lock_all(void)
{
    for (unsigned c = 0; c < CLASS_COUNT; c++)
        os_lock(&centrals[c].lock);
    os_lock(&address_limit.lock);
}

void slab_unlock_all(void)
{
    os_unlock(&address_limit.lock);
    for (unsigned c = CLASS_COUNT; c-- > 0;)
        os_unlock(&centrals[c].lock);
}

void slab_reset_locks(void)
{
    for (unsigned c = 0; c < CLASS_COUNT; c++)
        os_lock_reset(&centrals[c].lock);
    os_lock_reset(&address_limit.lock);
}
