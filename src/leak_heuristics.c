/* leak_heuristics.c — valgrind's leak-check heuristics (see leak_heuristics.h), with
 * memcheck's own tests (mc_leakcheck.c, heuristic_reachedness). */
#include "leak_heuristics.h"

#include <stdbool.h>
#include <string.h>

#define WORD sizeof(uint64_t)
#define PAGE 4096u
#define VTABLE_MAX_CHECK 20          /* words looked at for two code pointers */

/* A word of the block. A block under a page is readable whole; a bigger one may hold
 * pages the program protected. */
static bool read_word(const struct memory_map *map, const struct heuristic_block *b,
                      uintptr_t addr, uint64_t *out)
{
    uintptr_t end;
    if (addr < b->addr || addr + WORD > b->addr + b->size)
        return false;
    if (b->size >= PAGE &&
        (!(map->kind_of(map, addr, &end) & MEMORY_READABLE) || end - addr < WORD))
        return false;
    memcpy(out, (const void *)addr, WORD);
    return true;
}

/* length capacity refcount chars... '\0', p at the characters. */
static bool is_stdstring(const struct memory_map *map, uintptr_t p, const struct heuristic_block *b)
{
    uint64_t length, capacity;
    return p == b->addr + 3 * WORD && read_word(map, b, b->addr + WORD, &capacity) &&
           capacity <= b->size && 3 * WORD + capacity + 1 == b->size &&
           read_word(map, b, b->addr, &length) && length <= capacity;
}

static bool is_length64(const struct memory_map *map, uintptr_t p, const struct heuristic_block *b)
{
    uint64_t length;
    return p == b->addr + WORD && read_word(map, b, b->addr, &length) && length > 0 &&
           b->size - WORD == length;
}

static bool is_newarray(const struct memory_map *map, uintptr_t p, const struct heuristic_block *b)
{
    uint64_t count;
    return p == b->addr + WORD && read_word(map, b, b->addr, &count) && count > 0 &&
           (b->size - WORD) % count == 0;
}

/* A table of at least two code pointers (nulls allowed) in a readable file mapping. */
static bool is_vtable(const struct memory_map *map, uint64_t table)
{
    uintptr_t end, code_end;
    if (table % WORD || table < PAGE ||
        (map->kind_of(map, table, &end) & (MEMORY_READABLE | MEMORY_FILE)) !=
            (MEMORY_READABLE | MEMORY_FILE))
        return false;
    unsigned found = 0;
    for (uintptr_t at = table; at + WORD <= end && at < table + VTABLE_MAX_CHECK * WORD;
         at += WORD) {
        uint64_t fn;
        memcpy(&fn, (const void *)at, WORD);
        if (fn == 0)
            continue;
        if ((map->kind_of(map, fn, &code_end) & (MEMORY_FILE | MEMORY_CODE)) !=
            (MEMORY_FILE | MEMORY_CODE))
            return false;
        if (++found == 2)
            return true;
    }
    return false;
}

static bool starts_with_vtable(const struct memory_map *map, struct heuristic_block *b)
{
    uint64_t first;
    if (!b->starts_with_vtable)
        b->starts_with_vtable = read_word(map, b, b->addr, &first) && is_vtable(map, first)
                                ? VTABLE_YES : VTABLE_NO;
    return b->starts_with_vtable == VTABLE_YES;
}

static bool is_base_part(const struct memory_map *map, uintptr_t p, struct heuristic_block *b)
{
    uint64_t inner;
    return p % WORD == 0 && starts_with_vtable(map, b) && read_word(map, b, p, &inner) &&
           is_vtable(map, inner);
}

enum leak_heuristic leak_heuristic_of(uintptr_t p, struct heuristic_block *b, unsigned enabled,
                                      const struct memory_map *map)
{
    if ((enabled & 1u << (HEURISTIC_STDSTRING - 1)) && is_stdstring(map, p, b))
        return HEURISTIC_STDSTRING;
    if ((enabled & 1u << (HEURISTIC_LENGTH64 - 1)) && is_length64(map, p, b))
        return HEURISTIC_LENGTH64;
    if ((enabled & 1u << (HEURISTIC_NEWARRAY - 1)) && is_newarray(map, p, b))
        return HEURISTIC_NEWARRAY;
    if ((enabled & 1u << (HEURISTIC_MULTIPLE_INHERITANCE - 1)) && is_base_part(map, p, b))
        return HEURISTIC_MULTIPLE_INHERITANCE;
    return HEURISTIC_NONE;
}
