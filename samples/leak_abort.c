/* leak_abort.c — leaks a block, then dies by abort() (SIGABRT). A wrapper must report the
 * death by signal and re-raise it; valgrind still runs its leak check in this case.
 * Expected (valgrind 3.19 agrees): killed by signal 6;
 *   32 bytes in 1 blocks definitely lost (doomed). */
#include <stdlib.h>
#include <string.h>

#include "sample.h"

__attribute__((noinline)) static void doomed(void)
{
    char *volatile p = malloc(32); /* expect: leak definite before abort */
    memset(p, 0, 32);
    p = NULL;
}

int main(void)
{
    doomed();
    sample_forget();
    abort();
}
