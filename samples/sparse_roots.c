/* sparse_roots.c — pointers kept in a few touched pages of a huge, barely used region: an
 * 8 GiB read-write reservation (a root, as the program's own mapping) and a 1 GiB calloc
 * (a block). The leak scan may pass over the pages never touched, but must find the
 * pointers on the touched ones.
 *
 * Expected (valgrind 3.19 agrees, in 12 s):
 *   24 bytes in 1 blocks definitely lost (leak_block)
 *   40 bytes still reachable (through the reservation) and 1 GiB + 56 bytes still
 *   reachable (the calloc'd table, held by a global, and the block it points to);
 *   exit status 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "sample.h"

#define RESERVED (8ul << 30)
#define TABLE (1ul << 30)

void **g_table;

__attribute__((noinline)) static void leak_block(void)
{
    char *volatile p = malloc(24); /* expect: leak definite */
    memset(p, 'x', 24);
    p = NULL;
}

int main(void)
{
    char *region = mmap(NULL, RESERVED, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (region == MAP_FAILED)
        return 1;
    void *in_region = malloc(40); /* expect: reachable through the reservation */
    memcpy(region + RESERVED / 2 + 8, &in_region, sizeof in_region);
    in_region = NULL;

    g_table = calloc(TABLE, 1); /* expect: reachable table */
    if (!g_table)
        return 1;
    g_table[TABLE / 2 / sizeof(void *) + 1] = malloc(56); /* expect: reachable through the table */

    leak_block();
    sample_forget();
    puts("done");
    return 0;
}
