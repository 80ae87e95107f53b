/* holdshim.c — a preload shim for the bench's breakdown section: it does only what any
 * checker with memtrace's layout must do, so that what memtrace adds beyond it shows.
 *
 * Every block gets a 16-byte head (its size and head length) and a 16-byte tail, as
 * memtrace's redzoned blocks do, and nothing is checked, recorded or unwound. With
 * HOLDSHIM_BYTES=N, freed blocks wait in a FIFO until N bytes (counted as memtrace's
 * quarantine counts them) are held, then go back to the allocator oldest first: a
 * quarantine without checks. realloc moves blocks up to 64 KiB and resizes bigger ones in
 * place, as memtrace does. The allocator underneath is the next in the link chain: glibc,
 * or another one preloaded after the shim (the bench's jemalloc rows). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HEAD 16
#define TAIL 16
#define RESIZE_IN_PLACE_ABOVE (64 * 1024)
#define RING_ORDER 20

struct header {
    size_t size;
    size_t head;                     /* bytes from the allocator's chunk to the block */
};

static size_t budget = SIZE_MAX;     /* HOLDSHIM_BYTES; SIZE_MAX: not read yet */

static struct {
    int lock;
    size_t bytes;
    uint64_t first, count;
    void *raw[1u << RING_ORDER];
    size_t held[1u << RING_ORDER];
} fifo;

static struct {
    void *(*malloc)(size_t);
    void *(*calloc)(size_t, size_t);
    void *(*memalign)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void (*free)(void *);
} next;

/* dlsym may allocate before the allocator underneath is known: from here, never freed. */
static char bootstrap[1 << 16];
static size_t bootstrap_used;

static void find_next(void)
{
    next.calloc = dlsym(RTLD_NEXT, "calloc");
    next.memalign = dlsym(RTLD_NEXT, "memalign");
    next.realloc = dlsym(RTLD_NEXT, "realloc");
    next.free = dlsym(RTLD_NEXT, "free");
    next.malloc = dlsym(RTLD_NEXT, "malloc");
}

/* Whether the allocator underneath is known (a call from inside dlsym finds it is not). */
static int have_next(void)
{
    static int finding;
    if (!next.malloc && !finding) {
        finding = 1;
        find_next();
        finding = 0;
    }
    return next.malloc != NULL;
}

static void *next_malloc(size_t size)
{
    if (have_next())
        return next.malloc(size);
    size = (size + 15) & ~(size_t)15;
    if (size > sizeof bootstrap - bootstrap_used)
        return NULL;
    bootstrap_used += size;
    return bootstrap + bootstrap_used - size;
}

static void next_free(void *raw)
{
    if ((char *)raw < bootstrap || (char *)raw >= bootstrap + sizeof bootstrap)
        next.free(raw);
}

static struct header *header_of(void *p)
{
    return (struct header *)((char *)p - sizeof(struct header));
}

static void *finish(char *raw, size_t head, size_t size)
{
    if (!raw)
        return NULL;
    struct header *h = (struct header *)(raw + head - sizeof *h);
    h->size = size;
    h->head = head;
    return raw + head;
}

static void *alloc(size_t size, size_t align)
{
    size_t head = align > HEAD ? align : HEAD;
    if (size > SIZE_MAX / 2) {
        errno = ENOMEM;
        return NULL;
    }
    char *raw;
    if (align <= 16)
        raw = next_malloc(head + size + TAIL);
    else
        raw = have_next() ? next.memalign(align, head + size + TAIL) : NULL;
    return finish(raw, head, size);
}

static void lock(void)
{
    while (__atomic_exchange_n(&fifo.lock, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(&fifo.lock, __ATOMIC_RELAXED))
            __builtin_ia32_pause();
}

static void unlock(void)
{
    __atomic_store_n(&fifo.lock, 0, __ATOMIC_RELEASE);
}

/* Read on the first free; threads racing to read it read the same. */
static size_t hold_budget(void)
{
    size_t b = __atomic_load_n(&budget, __ATOMIC_RELAXED);
    if (b == SIZE_MAX) {
        const char *s = getenv("HOLDSHIM_BYTES");
        b = s ? strtoull(s, NULL, 10) : 0;
        __atomic_store_n(&budget, b, __ATOMIC_RELAXED);
    }
    return b;
}

/* Pushes raw (held bytes) and hands back the blocks that leave, oldest first; with no
 * budget, straight back (no lock: the layout-only shim must not serialize threads). */
static void hold(void *raw, size_t held)
{
    void *leaving[64];
    int n = 0;
    if (hold_budget() == 0) {
        next_free(raw);
        return;
    }
    lock();
    uint64_t mask = (1u << RING_ORDER) - 1;
    fifo.raw[(fifo.first + fifo.count) & mask] = raw;
    fifo.held[(fifo.first + fifo.count) & mask] = held;
    fifo.count++;
    fifo.bytes += held;
    while (n < 64 && fifo.count && (fifo.bytes > budget || fifo.count > mask)) {
        leaving[n++] = fifo.raw[fifo.first & mask];
        fifo.bytes -= fifo.held[fifo.first & mask];
        fifo.first++;
        fifo.count--;
    }
    unlock();
    for (int i = 0; i < n; i++)
        next_free(leaving[i]);
}

void *malloc(size_t size)
{
    return alloc(size, 0);
}

void free(void *p)
{
    if (!p)
        return;
    struct header *h = header_of(p);
    size_t held = (h->head + h->size + TAIL + 8 + 15) & ~(size_t)15;
    hold((char *)p - h->head, held);
}

void cfree(void *p)
{
    free(p);
}

void *calloc(size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total) || total > SIZE_MAX / 2) {
        errno = ENOMEM;
        return NULL;
    }
    if (!next.calloc)
        return finish(next_malloc(HEAD + total + TAIL), HEAD, total);   /* bootstrap: zero */
    return finish(next.calloc(1, HEAD + total + TAIL), HEAD, total);
}

void *realloc(void *p, size_t size)
{
    if (!p)
        return malloc(size);
    struct header *h = header_of(p);
    if (h->size > RESIZE_IN_PLACE_ABOVE && h->head == HEAD && size <= SIZE_MAX / 2)
        return finish(next.realloc((char *)p - HEAD, HEAD + size + TAIL), HEAD, size);
    void *q = malloc(size);
    if (q) {
        memcpy(q, p, h->size < size ? h->size : size);
        free(p);
    }
    return q;
}

void *reallocarray(void *p, size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, total);
}

int posix_memalign(void **out, size_t align, size_t size)
{
    if (!align || (align & (align - 1)) || align % sizeof(void *))
        return EINVAL;
    void *p = alloc(size, align);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t size)
{
    return memalign(align, size);
}

void *memalign(size_t align, size_t size)
{
    size_t pow2 = 16;
    while (pow2 < align)
        pow2 <<= 1;
    return alloc(size, pow2);
}

void *valloc(size_t size)
{
    return alloc(size, (size_t)sysconf(_SC_PAGESIZE));
}

void *pvalloc(size_t size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return alloc((size + page - 1) & ~(page - 1), page);
}

size_t malloc_usable_size(void *p)
{
    return p ? header_of(p)->size : 0;
}
