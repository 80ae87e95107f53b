/* mismatched_free.cpp — blocks released with the wrong family of deallocator: malloc then
 * delete, new then free, new[] then delete, new then delete[]. The element type is
 * trivially destructible, so new[] stores no array cookie and delete[] hands operator
 * delete[] the block's start: each case is a pure mismatch, never an interior pointer.
 * Each is a report and nothing else: the block is still released (valgrind's behaviour),
 * so nothing leaks; the program prints one line per case and ends with status 0.
 *
 * Expected (valgrind 3.19 agrees, ERROR SUMMARY: 4 errors from 4 contexts):
 *   MismatchedFree at each "mismatched ..." line, block alloc'd at the matching
 *   "alloc ..." line, "0 bytes inside a block of size N alloc'd" (N = 16, 4, 32, 4);
 *   All heap blocks were freed (besides libstdc++'s own pool, freed at exit by valgrind). */
#include <cstdio>
#include <cstdlib>
#include <cstring>

__attribute__((noinline)) static void malloc_then_delete()
{
    int *volatile p = static_cast<int *>(std::malloc(4 * sizeof(int))); /* expect: alloc malloc/delete */
    std::memset(p, 0, 4 * sizeof(int));
    std::printf("malloc/delete block %p\n", static_cast<void *>(p));
    delete p; /* expect: mismatched malloc/delete */
}

__attribute__((noinline)) static void new_then_free()
{
    int *volatile p = new int(7); /* expect: alloc new/free */
    std::printf("new/free block %p\n", static_cast<void *>(p));
    std::free(p); /* expect: mismatched new/free */
}

__attribute__((noinline)) static void new_array_then_delete()
{
    int *volatile p = new int[8](); /* expect: alloc new[]/delete */
    std::printf("new[]/delete block %p\n", static_cast<void *>(p));
    delete p; /* expect: mismatched new[]/delete */
}

__attribute__((noinline)) static void new_then_delete_array()
{
    int *volatile p = new int(9); /* expect: alloc new/delete[] */
    std::printf("new/delete[] block %p\n", static_cast<void *>(p));
    delete[] p; /* expect: mismatched new/delete[] */
}

int main()
{
    std::setvbuf(stdout, nullptr, _IONBF, 0);
    malloc_then_delete();
    new_then_free();
    new_array_then_delete();
    new_then_delete_array();
    std::puts("mismatched_free: end");
    return 0;
}
