/* crash_leak.c — a program that leaks a block and then crashes on a null pointer: the
 * process still dies of SIGSEGV, and the report still has its heap and leak summaries (as
 * valgrind's has, and as after abort()).
 *
 * Expected (valgrind 3.19 agrees): 64 bytes in 1 blocks definitely lost, allocated in
 * make_lost(); the process ends with signal 11. */
#include <stdlib.h>
#include <string.h>

#include "sample.h"

__attribute__((noinline)) static void make_lost(void)
{
    char *volatile lost = malloc(64); /* expect: leak definite lost */
    memset(lost, 'l', 64);
    lost = NULL;
}

int main(void)
{
    make_lost();
    sample_forget();
    int *volatile nowhere = NULL;
    return *nowhere; /* expect: crash */
}
