/* leak_possible.c — only an interior pointer survives: "possibly lost", not definite.
 *
 * The 64-byte block's start pointer is dropped; a global keeps a pointer 16 bytes into
 * it (like a parser cursor). The block is zeroed so none of valgrind's interior-pointer
 * heuristics (stdstring, length64, newarray, multipleinheritance) can claim it.
 * Expected (valgrind 3.19 agrees):
 *   64 bytes in 1 blocks possibly lost (make_buffer); 0 definite, 0 reachable. */
#include <stdlib.h>

#include "sample.h"

static char *volatile g_cursor;         /* points inside the block, never at its start */

__attribute__((noinline)) static char *make_buffer(void)
{
    char *buf = calloc(1, 64); /* expect: leak possible */
    return buf;
}

int main(void)
{
    char *volatile buf = make_buffer();
    g_cursor = buf + 16;
    buf = NULL;

    sample_forget();
    return 0;
}
