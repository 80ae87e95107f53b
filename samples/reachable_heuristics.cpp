/* reachable_heuristics.cpp — blocks that only an interior pointer keeps, of the four
 * shapes valgrind's leak-check heuristics accept as still reachable: sqlite3's allocator
 * (a 64-bit length of the rest, then the memory it hands out), a new[] array of objects
 * with a destructor (the element count before the elements), a pre-C++11 std::string (a
 * 3-word header before the characters), and an object seen through its second base class
 * (both it and the block starting with a vtable pointer). A fifth block is kept only by a
 * plain interior pointer: possibly lost.
 * Expected (valgrind 3.19 agrees, default --leak-check-heuristics=all): 48 + 48 + 35 + 40
 * bytes in 4 blocks still reachable, "of which reachable via heuristic" one block each;
 * 64 bytes in 1 blocks possibly lost. With --leak-check-heuristics=none all five are
 * possibly lost. */
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "sample.h"

struct First {
    virtual ~First() {}
    virtual void first() {}
    long a = 1;
};
struct Second {
    virtual ~Second() {}
    virtual void second() {}
    long b = 2;
};
struct Both : First, Second {
    long c = 3;
};
struct Counted {
    ~Counted() {}
    long d = 4;
};

static char *volatile sqlite_memory;
static Counted *volatile array;
static char *volatile characters;
static Second *volatile second_base;
static char *volatile cursor;

__attribute__((noinline)) static void keep_interior_pointers()
{
    uint64_t *sized = static_cast<uint64_t *>(malloc(8 + 40)); /* expect: reachable via length64 */
    sized[0] = 40;
    sqlite_memory = reinterpret_cast<char *>(sized + 1);
    array = new Counted[5]; /* expect: reachable via newarray */
    uint64_t *header = static_cast<uint64_t *>(malloc(24 + 10 + 1)); /* expect: reachable via stdstring */
    header[0] = 5;
    header[1] = 10;
    header[2] = 0;
    characters = reinterpret_cast<char *>(header + 3);
    memcpy(characters, "hello", 6);
    second_base = new Both; /* expect: reachable via multipleinheritance */
    char *plain = static_cast<char *>(calloc(1, 64)); /* expect: possible through a cursor */
    cursor = plain + 5;
}

int main()
{
    keep_interior_pointers();
    sample_forget();
    return 0;
}
