/* killed_leak.c — leaks a block, then ends by a signal whose default action kills it: a CI
 * job's timeout (SIGTERM), a ^C (SIGINT), a closed pipe (SIGPIPE). valgrind still runs its
 * leak check then and says where the program was. Modes, `killed_leak MODE`:
 *
 *   wait      prints "ready PID", then waits in pause() for the test's signal.
 *   busy      prints "ready PID", then allocates and frees without end: the signal lands
 *             while the tool itself is running on the thread as often as not.
 *   raise     raise(SIGTERM) from main.
 *   pipe      writes to a pipe whose reading end it closed: SIGPIPE.
 *   query     reads SIGTERM's action (prints "default" when SIG_DFL), installs a handler
 *             of its own, raises SIGTERM: the handler exits with status 7.
 *   ignore    sets SIGTERM to SIG_IGN and raises it: goes on, exits 0.
 *
 * Expected (valgrind 3.19 agrees for wait, raise and pipe): 48 bytes in 1 blocks
 * definitely lost (doomed); killed by the signal, with the stack where it landed; no
 * errors. query and ignore exit 7 and 0 with the same leak. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sample.h"

__attribute__((noinline)) static void doomed(void)
{
    char *volatile p = malloc(48); /* expect: leak definite before the signal */
    memset(p, 0, 48);
    p = NULL;
}

__attribute__((noinline)) static void say(const char *text)
{
    if (write(STDOUT_FILENO, text, strlen(text)) < 0)
        _exit(1);
}

__attribute__((noinline)) static void say_ready(void)
{
    char line[32];
    snprintf(line, sizeof line, "ready %ld\n", (long)getpid());
    say(line);
}

__attribute__((noinline)) static void wait_for_signal(void)
{
    for (;;)
        pause(); /* expect: waiting for the signal */
}

__attribute__((noinline)) static void churn(void)
{
    for (;;) {
        char *volatile p = malloc(64);
        memset(p, 1, 64);
        free(p);
    }
}

__attribute__((noinline)) static void write_to_closed_pipe(void)
{
    int fds[2];
    if (pipe(fds) != 0)
        _exit(1);
    close(fds[0]);
    if (write(fds[1], "x", 1) < 0) /* expect: write to the closed pipe */
        _exit(1);
}

static void own_handler(int sig)
{
    (void)sig;
    _exit(7);
}

__attribute__((noinline)) static int query_then_handle(void)
{
    struct sigaction was;
    if (sigaction(SIGTERM, NULL, &was) == 0 && was.sa_handler == SIG_DFL)
        say("default\n");
    signal(SIGTERM, own_handler);
    raise(SIGTERM);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    doomed();
    sample_forget();
    if (strcmp(argv[1], "wait") == 0) {
        say_ready();
        wait_for_signal();
    } else if (strcmp(argv[1], "busy") == 0) {
        say_ready();
        churn();
    } else if (strcmp(argv[1], "raise") == 0) {
        raise(SIGTERM); /* expect: raise */
    } else if (strcmp(argv[1], "pipe") == 0) {
        write_to_closed_pipe();
    } else if (strcmp(argv[1], "query") == 0) {
        return query_then_handle();
    } else if (strcmp(argv[1], "ignore") == 0) {
        signal(SIGTERM, SIG_IGN);
        raise(SIGTERM);
        return 0;
    }
    return 2;
}
