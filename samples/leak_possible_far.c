/* leak_possible_far.c — interior pointers far into page-spanning blocks: "possibly lost".
 *
 * Two 20000-byte blocks keep only a pointer well inside them: one 12000 bytes in (a page
 * where no block starts), one 10 bytes before the end (with --guard=none, the page where
 * the block allocated next starts). The leak scan must find the block that started pages
 * before the pointer. The blocks are zeroed, so none of valgrind's interior-pointer
 * heuristics claims them. Expected (valgrind 3.19 agrees): 40,000 bytes in 2 blocks
 * possibly lost (make_big), 0 definite; the 32-byte neighbour still reachable. */
#include <stdlib.h>

#include "sample.h"

static char *volatile g_middle, *volatile g_near_end, *volatile g_neighbour;

__attribute__((noinline)) static char *make_big(void)
{
    char *block = calloc(1, 20000); /* expect: leak possible far */
    return block;
}

int main(void)
{
    char *volatile blocks[2];
    for (int i = 0; i < 2; i++)          /* one call site: one loss record */
        blocks[i] = make_big();
    g_neighbour = calloc(1, 32);
    g_middle = blocks[0] + 12000;
    g_near_end = blocks[1] + 19990;
    blocks[0] = blocks[1] = NULL;

    sample_forget();
    return 0;
}
