/* nested.c — one mapping per nested block, and the set that knows them (see nested.h). */
#include "nested.h"

#include <stdint.h>
#include <sys/mman.h>

#include "os.h"

#define SET_SLOTS 4096               /* a power of two; nested blocks are few */
#define TOMBSTONE ((uintptr_t)1)
#define PAGE 4096

/* Stored just below the block: what to unmap, and the size asked for. */
struct nested_header {
    uintptr_t base;
    size_t length, size;
};

static uintptr_t live_set[SET_SLOTS];

static size_t slot_of(uintptr_t p)
{
    return (size_t)((p >> 4) * 0x9e3779b97f4a7c15ull >> 52) & (SET_SLOTS - 1);
}

static bool set_add(uintptr_t p)
{
    for (size_t i = 0, s = slot_of(p); i < SET_SLOTS; i++, s = (s + 1) & (SET_SLOTS - 1)) {
        uintptr_t seen = __atomic_load_n(&live_set[s], __ATOMIC_ACQUIRE);
        if ((seen == 0 || seen == TOMBSTONE) &&
            __atomic_compare_exchange_n(&live_set[s], &seen, p, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            return true;
    }
    return false;
}

static uintptr_t *set_find(uintptr_t p)
{
    for (size_t i = 0, s = slot_of(p); i < SET_SLOTS; i++, s = (s + 1) & (SET_SLOTS - 1)) {
        uintptr_t seen = __atomic_load_n(&live_set[s], __ATOMIC_ACQUIRE);
        if (seen == p)
            return &live_set[s];
        if (seen == 0)
            return NULL;
    }
    return NULL;
}

void *nested_alloc(size_t size, size_t align)
{
    size_t head = align > sizeof(struct nested_header) ? align : 32;
    if (size > ((size_t)1 << 46) || head > ((size_t)1 << 30))
        return NULL;
    size_t length = (head + size + PAGE - 1) & ~(size_t)(PAGE - 1);
    size_t extra = align > PAGE ? align : 0;  /* room to align the block itself */
    uint8_t *base = os_mmap(NULL, length + extra, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    uintptr_t p = ((uintptr_t)base + head + (align ? align - 1 : 0)) & ~(uintptr_t)(align ? align - 1 : 0);
    struct nested_header *h = (struct nested_header *)p - 1;
    *h = (struct nested_header){(uintptr_t)base, length + extra, size};
    set_add(p);
    return (void *)p;
}

bool nested_free(void *ptr)
{
    uintptr_t *slot = set_find((uintptr_t)ptr);
    uintptr_t expected = (uintptr_t)ptr;
    if (!slot || !__atomic_compare_exchange_n(slot, &expected, TOMBSTONE, false,
                                              __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return false;
    const struct nested_header *h = (const struct nested_header *)ptr - 1;
    os_munmap((void *)h->base, h->length);
    return true;
}

bool nested_size(const void *ptr, size_t *size)
{
    if (!set_find((uintptr_t)ptr))
        return false;
    *size = ((const struct nested_header *)ptr - 1)->size;
    return true;
}

void nested_for_each(void (*fn)(uintptr_t block, size_t size, void *ctx), void *ctx)
{
    for (size_t i = 0; i < SET_SLOTS; i++) {
        uintptr_t p = __atomic_load_n(&live_set[i], __ATOMIC_ACQUIRE);
        if (p != 0 && p != TOMBSTONE)
            fn(p, ((const struct nested_header *)p - 1)->size, ctx);
    }
}
