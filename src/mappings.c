/* mappings.c — the program's own mmap'd regions (see mappings.h). An array of regions with
 * an index by start address: mmap, and munmap or mprotect of what one mmap (or mprotect)
 * made, find their regions in it at once. Anything else (a MAP_FIXED mapping over others,
 * an unmap across regions it does not start or end on) cuts through the whole array and
 * rebuilds the index. A scan of the array on every call made 30k live mappings cost 6x
 * their syscalls. */
#include "mappings.h"

#include <string.h>

#include "os.h"

#define INDEX_EMPTY 0u               /* index slots hold an item number + 1 */
#define INDEX_DELETED UINT32_MAX
#define ANY_ITEM SIZE_MAX

static struct {
    struct pool *pool;
    struct spinlock lock;
    struct mapping *items;
    size_t count, capacity;
    uint32_t *index;                 /* 2 * capacity slots, open addressing by start */
    size_t deleted;                  /* INDEX_DELETED slots, cleared by a rebuild */
} maps;

static size_t index_mask(void)
{
    return 2 * maps.capacity - 1;
}

static size_t index_home(uintptr_t start)
{
    return (size_t)(((uint64_t)start * 0x9e3779b97f4a7c15ull) >> 32) & index_mask();
}

/* The slot of the region starting at start (item `want`, or any), or NULL. */
static uint32_t *index_find(uintptr_t start, size_t want)
{
    for (size_t i = index_home(start);; i = (i + 1) & index_mask()) {
        uint32_t v = maps.index[i];
        if (v == INDEX_EMPTY)
            return NULL;
        if (v != INDEX_DELETED && maps.items[v - 1].start == start && (want == ANY_ITEM || v - 1 == want))
            return &maps.index[i];
    }
}

static void index_put(size_t item)
{
    size_t i = index_home(maps.items[item].start);
    while (maps.index[i] != INDEX_EMPTY && maps.index[i] != INDEX_DELETED)
        i = (i + 1) & index_mask();
    maps.deleted -= maps.index[i] == INDEX_DELETED;
    maps.index[i] = (uint32_t)(item + 1);
}

static void index_rebuild(void)
{
    memset(maps.index, 0, 2 * maps.capacity * sizeof *maps.index);
    maps.deleted = 0;
    for (size_t i = 0; i < maps.count; i++)
        index_put(i);
}

static bool make_room(size_t capacity)
{
    struct mapping *items = pool_alloc(maps.pool, capacity * sizeof *items);
    uint32_t *index = items ? pool_alloc(maps.pool, 2 * capacity * sizeof *index) : NULL;
    if (!index) {
        pool_free(maps.pool, items);
        return false;
    }
    if (maps.items)
        memcpy(items, maps.items, maps.count * sizeof *items);
    pool_free(maps.pool, maps.items);
    pool_free(maps.pool, maps.index);
    maps.items = items;
    maps.index = index;
    maps.capacity = capacity;
    index_rebuild();
    return true;
}

bool mappings_init(struct pool *pool)
{
    maps.pool = pool;
    maps.items = NULL;
    maps.index = NULL;
    maps.count = 0;
    return make_room(256);
}

static bool reserve(size_t extra)
{
    if (maps.count + extra <= maps.capacity)
        return true;
    return make_room(maps.capacity * 2);
}

/* Appends a region and indexes it; deleted slots are swept once they fill a quarter. */
static void append(struct mapping m)
{
    if (!maps.items || !reserve(1))
        return;
    maps.items[maps.count] = m;
    index_put(maps.count++);
    if (maps.deleted > maps.capacity / 2)
        index_rebuild();
}

/* Removes the item the index slot names: the last item moves into its place. */
static void remove_item(uint32_t *slot)
{
    size_t item = *slot - 1, last = maps.count - 1;
    *slot = INDEX_DELETED;
    maps.deleted++;
    if (item != last) {
        maps.items[item] = maps.items[last];
        *index_find(maps.items[item].start, last) = (uint32_t)(item + 1);
    }
    maps.count--;
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
    index_rebuild();
}

/* Removes the regions that tile [start, end) exactly, one starting where the last ended;
 * false (nothing removed) when they do not. */
static bool remove_tiling(uintptr_t start, uintptr_t end)
{
    uintptr_t at = start;
    uint32_t *slot;
    while (at < end && (slot = index_find(at, ANY_ITEM)) != NULL && maps.items[*slot - 1].end <= end)
        at = maps.items[*slot - 1].end;
    if (at != end)
        return false;
    for (at = start; at < end;) {
        slot = index_find(at, ANY_ITEM);
        at = maps.items[*slot - 1].end;
        remove_item(slot);
    }
    return true;
}

void mappings_add(uintptr_t start, size_t len, int prot, uint32_t stack, bool replaces)
{
    struct mapping m = {start, start + len, prot, stack};
    os_lock(&maps.lock);
    uint32_t *same = NULL;
    if (replaces)
        cut_locked(start, start + len);      /* MAP_FIXED replaces what was there */
    else if (maps.items)
        same = index_find(start, ANY_ITEM);  /* unmapped behind our back: replaced */
    if (same)
        maps.items[*same - 1] = m;
    else
        append(m);
    os_unlock(&maps.lock);
}

void mappings_remove(uintptr_t start, size_t len)
{
    os_lock(&maps.lock);
    if (maps.items && !remove_tiling(start, start + len))
        cut_locked(start, start + len);
    os_unlock(&maps.lock);
}

/* A region starting at start and reaching past end: split at end, its head gets prot. */
static bool protect_head(uintptr_t start, uintptr_t end, int prot)
{
    uint32_t *slot = index_find(start, ANY_ITEM);
    if (!slot || maps.items[*slot - 1].end < end)
        return false;
    struct mapping *m = &maps.items[*slot - 1];
    if (m->end > end) {
        struct mapping tail = *m;
        tail.start = end;
        m->end = end;
        m->prot = prot;
        append(tail);
    } else {
        m->prot = prot;
    }
    return true;
}

void mappings_protect(uintptr_t start, size_t len, int prot)
{
    uintptr_t end = start + len;
    os_lock(&maps.lock);
    if (maps.items && !protect_head(start, end, prot))
        for (size_t i = 0; i < maps.count; i++)
            if (maps.items[i].start >= start && maps.items[i].end <= end)
                maps.items[i].prot = prot;
    os_unlock(&maps.lock);
}

size_t mappings_length_at(uintptr_t start)
{
    os_lock(&maps.lock);
    uint32_t *slot = maps.items ? index_find(start, ANY_ITEM) : NULL;
    size_t len = slot ? maps.items[*slot - 1].end - start : 0;
    os_unlock(&maps.lock);
    return len;
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
