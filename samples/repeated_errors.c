/* repeated_errors.c — one bad free made 50 times from one line, and 3 times from another:
 * two contexts, as valgrind counts them ("53 errors from 2 contexts"). Each context is
 * reported once, with how many times it happened.
 *
 * Expected (valgrind 3.19 agrees): InvalidFree at "repeated stack free" 50 times and at
 * "repeated global free" 3 times; no leaks. */
#include <stdio.h>
#include <stdlib.h>

static char g_flag[16];

__attribute__((noinline)) static void free_stack_address(void)
{
    char local[16];
    free(local); /* expect: repeated stack free */
}

int main(void)
{
    for (int i = 0; i < 50; i++)
        free_stack_address();
    for (int i = 0; i < 3; i++)
        free(g_flag); /* expect: repeated global free */
    puts("done");
    return 0;
}
