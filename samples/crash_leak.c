/* crash_leak.c — a program that leaks a block and then crashes on a null pointer (or,
 * with the argument `divide`, divides by zero): the process still dies of SIGSEGV (SIGFPE),
 * and the report still has its heap and leak summaries (as valgrind's has, and as after
 * abort()), and says where it crashed. With `handled`, the program's own SIGFPE handler
 * catches the division and the program ends normally.
 *
 * Expected (valgrind 3.19 agrees): 64 bytes in 1 blocks definitely lost, allocated in
 * make_lost(); the process ends with signal 11 (8). */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sample.h"

static sigjmp_buf recover;

static void on_fpe(int sig)
{
    (void)sig;
    siglongjmp(recover, 1);
}

/* The program's own SIGFPE handler gets its fault, and sigaction shows it as installed. */
static int divide_handled(void)
{
    volatile int zero = 0, hundred = 100;
    struct sigaction action, seen;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_fpe;
    sigaction(SIGFPE, &action, NULL);
    if (sigsetjmp(recover, 1) == 0)
        printf("quotient %d\n", hundred / zero);
    else
        puts("caught SIGFPE");
    sigaction(SIGFPE, NULL, &seen);
    printf("handler kept %d\n", seen.sa_handler == on_fpe);
    return 0;
}

__attribute__((noinline)) static void make_lost(void)
{
    char *volatile lost = malloc(64); /* expect: leak definite lost */
    memset(lost, 'l', 64);
    lost = NULL;
}

int main(int argc, char **argv)
{
    make_lost();
    sample_forget();
    if (argc > 1 && strcmp(argv[1], "handled") == 0)
        return divide_handled();
    if (argc > 1 && strcmp(argv[1], "divide") == 0) {
        volatile int zero = 0, hundred = 100;  /* 1 / x compiles to no division at all */
        return hundred / zero; /* expect: divide */
    }
    int *volatile nowhere = NULL;
    return *nowhere; /* expect: crash */
}
