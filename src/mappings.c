/* mappings.c — the program's own mmap'd regions (see mappings.h). A plain array: programs
 * map far fewer regions than they allocate blocks, and mmap itself costs a syscall. */
#include "mappings.h"

#include <string.h>

#include "os.h"

static struct {
    struct pool *pool;
    struct spinlock lock;
    struct mapping *items;
    size_t count, capacity;
} maps;

bool mappings_init(struct pool *pool)
{
    maps.pool = pool;
    maps.capacity = 256;
    maps.items = pool_alloc(pool, maps.capacity * sizeof(struct mapping));
    return maps.items != NULL;
}

static bool reserve(size_t extra)
{
    if (maps.count + extra <= maps.capacity)
        return true;
    struct mapping *bigger = pool_alloc(maps.pool, maps.capacity * 2 * sizeof(struct mapping));
    if (!bigger)
        return false;
    memcpy(bigger, maps.items, maps.count * sizeof(struct mapping));
    pool_free(maps.pool, maps.items);
    maps.items = bigger;
    maps.capacity *= 2;
    return true;
}

/* Cuts [start, end) out of every region; a region cut in the middle becomes two. */
static void cut_locked(uintptr_t start, uintptr_t end)
{
    for (size_t i = 0; i < maps.count;) {
        struct mapping *m = &maps.items[i];
        if (m->end <= start || m->start >= end) {
            i++;
        } else if (m->start < start && m->end > end && reserve(1)) {
            m = &maps.items[i];
            struct mapping tail = *m;
            tail.start = end;
            m->end = start;
            maps.items[maps.count++] = tail;
            i++;
        } else if (m->start < start) {
            m->end = start;
            i++;
        } else if (m->end > end) {
            m->start = end;
            i++;
        } else {
            maps.items[i] = maps.items[--maps.count];
        }
    }
}

void mappings_add(uintptr_t start, size_t len, int prot, uint32_t stack)
{
    os_lock(&maps.lock);
    cut_locked(start, start + len);      /* MAP_FIXED replaces what was there */
    if (maps.items && reserve(1))
        maps.items[maps.count++] = (struct mapping){start, start + len, prot, stack};
    os_unlock(&maps.lock);
}

void mappings_remove(uintptr_t start, size_t len)
{
    os_lock(&maps.lock);
    if (maps.items)
        cut_locked(start, start + len);
    os_unlock(&maps.lock);
}

void mappings_protect(uintptr_t start, size_t len, int prot)
{
    uintptr_t end = start + len;
    os_lock(&maps.lock);
    for (size_t i = 0; maps.items && i < maps.count; i++)
        if (maps.items[i].start >= start && maps.items[i].end <= end)
            maps.items[i].prot = prot;
    os_unlock(&maps.lock);
}

void mappings_for_each(void (*fn)(const struct mapping *m, void *ctx), void *ctx)
{
    for (size_t i = 0; maps.items && i < maps.count; i++)
        fn(&maps.items[i], ctx);
}

void mappings_lock(void)
{
    os_lock(&maps.lock);
}

void mappings_unlock(void)
{
    os_unlock(&maps.lock);
}

void mappings_reset_lock(void)
{
    os_lock_reset(&maps.lock);
}
