/* array_cookie.cpp — delete and delete[] crossed on a class with a destructor, for which
 * new[] keeps the element count (the C++ ABI's "array cookie") in the 8 bytes before the
 * first element:
 *   new Tracked; delete[] p   delete[] reads a count at p - 8, runs that many destructors,
 *                             then frees p - 8;
 *   new Tracked[3]; delete p  delete runs one destructor and frees p, 8 bytes into the block.
 * Each is an invalid free and nothing else: the program goes on, the block stays allocated
 * and is definitely lost at exit. The bytes before a scalar new block read as zero under
 * memtrace, so delete[] runs no destructor (natively glibc aborts; with a canary there,
 * delete[] ran destructors off into memory until the program crashed). A byte written
 * there is still an underflow, found when the block is deleted (the third case).
 *
 * Expected (valgrind 3.19, besides two "Invalid read of size 8" at "delete[] of new": the
 * reads of the count, which memtrace cannot see):
 *   InvalidFree at "delete[] of new": "8 bytes before a block of size 4 alloc'd" at
 *     "alloc new"
 *   InvalidFree at "delete of new[]": "8 bytes inside a block of size 20 alloc'd" at
 *     "alloc new[]"
 *   InvalidWrite at "write before": "1 bytes before a block of size 4 alloc'd" at
 *     "alloc underflow" (memtrace: heap-underflow at "delete underflow", unless guarded
 *     with --guard-side=underflow)
 *   definitely lost: 4 bytes alloc'd at "alloc new", 20 bytes at "alloc new[]". */
#include <cstdio>

struct Tracked {
    int value;
    Tracked() : value(1) {}
    ~Tracked() { std::printf("destructor %d\n", value); }
};

__attribute__((noinline)) static void new_then_delete_array()
{
    Tracked *volatile p = new Tracked; /* expect: alloc new */
    std::printf("delete[] of new %p\n", static_cast<void *>(p));
    delete[] p; /* expect: delete[] of new */
}

__attribute__((noinline)) static void new_array_then_delete()
{
    Tracked *volatile p = new Tracked[3]; /* expect: alloc new[] */
    std::printf("delete of new[] %p\n", static_cast<void *>(p));
    delete p; /* expect: delete of new[] */
}

__attribute__((noinline)) static void write_before_new()
{
    Tracked *volatile p = new Tracked; /* expect: alloc underflow */
    std::printf("write before new %p\n", static_cast<void *>(p));
    reinterpret_cast<char *>(p)[-1] = 'u'; /* expect: write before */
    delete p; /* expect: delete underflow */
}

int main()
{
    std::setvbuf(stdout, nullptr, _IONBF, 0);
    new_then_delete_array();
    new_array_then_delete();
    write_before_new();
    std::puts("array_cookie: end");
    return 0;
}
