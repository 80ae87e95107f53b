/* sbrk_arena.c — a program that grows the data segment itself, as small allocators and
 * embedded-style code do: an arena from sbrk() and a second one from brk() hold the only
 * pointers to two heap blocks; a third block's pointer is dropped. The data segment is the
 * program's memory, scanned for pointers like its mmaps.
 * Expected (valgrind 3.19 agrees): 40 bytes in 1 blocks and 56 bytes in 1 blocks still
 * reachable (the arenas); 24 bytes in 1 blocks definitely lost (lose_one). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sample.h"

static void **sbrk_arena, **brk_arena;

__attribute__((noinline)) static void fill_arenas(void)
{
    sbrk_arena = sbrk(4096);
    if (sbrk_arena == (void **)-1)
        exit(1);
    sbrk_arena[3] = malloc(40); /* expect: reachable from sbrk */
    memset(sbrk_arena[3], 's', 40);

    char *end = sbrk(0);
    if (brk(end + 8192) != 0)
        exit(1);
    brk_arena = (void **)(end + 4096);
    brk_arena[5] = malloc(56); /* expect: reachable from brk */
    memset(brk_arena[5], 'b', 56);
}

__attribute__((noinline)) static void lose_one(void)
{
    char *volatile p = malloc(24); /* expect: leak definite after the arenas */
    memset(p, 'l', 24);
    p = NULL;
}

int main(void)
{
    fill_arenas();
    lose_one();
    /* Only the arenas keep the two blocks: the globals point past their starts. */
    sbrk_arena = (void **)((uintptr_t)sbrk_arena + 1);
    brk_arena = (void **)((uintptr_t)brk_arena + 1);
    sample_forget();
    return 0;
}
