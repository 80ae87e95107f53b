/* leak_heuristics.h — valgrind's leak-check heuristics: the interior pointers that still
 * make a block reachable, because common code keeps only such a pointer to a block it
 * uses (memcheck's --leak-check-heuristics, all on by default there too):
 *   stdstring            a pre-C++11 std::string's characters, after its 3-word header
 *   length64             8 bytes in, after a 64-bit length of the rest (sqlite3's malloc)
 *   newarray             8 bytes in, after new[]'s element count (arrays with destructors)
 *   multipleinheritance  a base class's part, both it and the block starting with vtables
 * The leak scan asks for each interior pointer it follows; what a pointer reads is only
 * read where the scan's map of the process says it is readable. */
#ifndef MEMTRACE_LEAK_HEURISTICS_H
#define MEMTRACE_LEAK_HEURISTICS_H

#include <stddef.h>
#include <stdint.h>

enum leak_heuristic {
    HEURISTIC_NONE,
    HEURISTIC_STDSTRING,
    HEURISTIC_LENGTH64,
    HEURISTIC_NEWARRAY,
    HEURISTIC_MULTIPLE_INHERITANCE,
    HEURISTIC_COUNT
};

/* What a mapping of the process is, for the vtable test (valgrind's: a vtable lies in a
 * readable file mapping, its entries point into executable file mappings). */
#define MEMORY_READABLE 1u
#define MEMORY_FILE     2u
#define MEMORY_CODE     4u
struct memory_map {
    /* MEMORY_* bits of the mapping holding addr (0: none), and its end. */
    unsigned (*kind_of)(const struct memory_map *map, uintptr_t addr, uintptr_t *end);
};

/* A block as the heuristics see it. starts_with_vtable caches that test, which every
 * interior pointer into the block would repeat: 0 not yet known, then VTABLE_NO/YES. */
#define VTABLE_NO  1
#define VTABLE_YES 2
struct heuristic_block {
    uintptr_t addr;
    size_t size;
    uint8_t starts_with_vtable;
};

/* Which heuristic, among the enabled ones (bit 1 << (h - 1) for heuristic h, the order of
 * --leak-check-heuristics), takes the interior pointer p as a pointer to the block;
 * HEURISTIC_NONE when none does. */
enum leak_heuristic leak_heuristic_of(uintptr_t p, struct heuristic_block *b, unsigned enabled,
                                      const struct memory_map *map);

#endif
