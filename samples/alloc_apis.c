/* alloc_apis.c — one leak from each allocation API besides plain malloc, with distinct sizes
 * so every loss record identifies its API. Sizes are the requested ones.
 *
 * Expected (valgrind 3.19 agrees), each 1 block definitely lost:
 *   posix_memalign(64, 100)      100 bytes
 *   aligned_alloc(32, 160)       160 bytes
 *   memalign(128, 200)           200 bytes
 *   valloc(50)                    50 bytes
 *   realloc(malloc(10), 300)     300 bytes (grown; recorded at the realloc call)
 *   realloc(malloc(500), 20)      20 bytes (shrunk; recorded at the realloc call)
 *   calloc(7, 9)                  63 bytes
 *   total 893 bytes in 7 blocks; heap usage 9 allocs, 2 frees, 1403 bytes allocated. */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "sample.h"

__attribute__((noinline)) static void *via_posix_memalign(void)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, 100) != 0) /* expect: leak posix_memalign */
        abort();
    return p;
}

__attribute__((noinline)) static void *via_aligned_alloc(void)
{
    return aligned_alloc(32, 160); /* expect: leak aligned_alloc */
}

__attribute__((noinline)) static void *via_memalign(void)
{
    return memalign(128, 200); /* expect: leak memalign */
}

__attribute__((noinline)) static void *via_valloc(void)
{
    return valloc(50); /* expect: leak valloc */
}

__attribute__((noinline)) static void *via_realloc_grow(void)
{
    char *p = malloc(10);
    memset(p, 'g', 10);
    return realloc(p, 300); /* expect: leak realloc grow */
}

__attribute__((noinline)) static void *via_realloc_shrink(void)
{
    char *p = malloc(500);
    memset(p, 's', 500);
    return realloc(p, 20); /* expect: leak realloc shrink */
}

__attribute__((noinline)) static void *via_calloc(void)
{
    return calloc(7, 9); /* expect: leak calloc */
}

int main(void)
{
    void *(*const makers[])(void) = {
        via_posix_memalign, via_aligned_alloc, via_memalign, via_valloc,
        via_realloc_grow,   via_realloc_shrink, via_calloc,
    };
    for (size_t i = 0; i < sizeof makers / sizeof makers[0]; i++) {
        void *volatile p = makers[i]();
        if (p == NULL)
            return 1;
        p = NULL;
    }
    sample_forget();
    return 0;
}
