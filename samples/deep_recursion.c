/* deep_recursion.c — a leak at the bottom of a 200-deep recursion: the allocation stack is
 * longer than any stack a report shows, so it is cut to --num-callers frames (default 24 in
 * memtrace, 12 in valgrind), innermost first.
 *
 * Expected (valgrind 3.19 agrees):
 *   64 bytes in 1 blocks definitely lost; frame 0 is descend() at the malloc line, every
 *   following shown frame is descend() at the recursive call line. */
#include <stdlib.h>
#include <string.h>

#include "sample.h"

#define DEPTH 200

__attribute__((noinline)) static int descend(int depth)
{
    if (depth == 0) {
        char *volatile p = malloc(64); /* expect: leak definite bottom */
        memset(p, 0, 64);
        p = NULL;
        return 0;
    }
    return descend(depth - 1) + 1; /* expect: recursive call */
}

int main(void)
{
    int depth = descend(DEPTH);
    sample_forget();
    return depth == DEPTH ? 0 : 1;
}
