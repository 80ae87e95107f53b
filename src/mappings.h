/* mappings.h — the regions the program itself mapped with mmap or shmat, or added to its
 * data segment with sbrk/brk (not glibc's own heap mappings, which bypass the interposed
 * calls). The leak scan treats the writable ones as roots, as valgrind does: programs keep
 * heap pointers in their own mappings (CPython's object arenas, custom allocators).
 * Regions still mapped at exit are listed in the report as information. One lock; the
 * table lives in the runtime pool, indexed by start address. */
#ifndef MEMTRACE_MAPPINGS_H
#define MEMTRACE_MAPPINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pool.h"

struct mapping {
    uintptr_t start, end;
    int prot;
    uint32_t stack;
};

bool mappings_init(struct pool *pool);
/* `replaces`: a MAP_FIXED mapping, which takes the place of whatever was mapped there. */
void mappings_add(uintptr_t start, size_t len, int prot, uint32_t stack, bool replaces);
/* Forgets [start, start+len), splitting regions that straddle it. */
void mappings_remove(uintptr_t start, size_t len);
void mappings_protect(uintptr_t start, size_t len, int prot);
/* The length of the region starting at start, or 0: shmdt names only the address. */
size_t mappings_length_at(uintptr_t start);
/* Unlocked: only while the world is stopped, or single-threaded at exit. */
void mappings_for_each(void (*fn)(const struct mapping *m, void *ctx), void *ctx);

void mappings_lock(void);
void mappings_unlock(void);
void mappings_reset_lock(void);

#endif
