/* fork_leak.c — parent and child each leak a block of a different size after fork().
 * Each process gets its own report (with --json=out.%p.json, one file per pid).
 * Prints "parent PID" and "child PID" lines on stdout (via write(2), no stdio buffer) so a
 * test can tell the two reports apart by pid.
 *
 * Expected (valgrind 3.19 agrees, one report per process):
 *   parent: 300 bytes in 1 blocks definitely lost (parent_work); nothing else in use
 *   child:   77 bytes in 1 blocks definitely lost (child_work);  nothing else in use
 *   both exit with status 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sample.h"

__attribute__((noinline)) static void say(const char *who, pid_t pid)
{
    char line[64];
    int n = snprintf(line, sizeof line, "%s %ld\n", who, (long)pid);
    if (write(STDOUT_FILENO, line, (size_t)n) < 0)
        _exit(1);
}

__attribute__((noinline)) static void parent_work(void)
{
    char *volatile p = malloc(300); /* expect: leak definite parent */
    memset(p, 'p', 300);
    p = NULL;
}

__attribute__((noinline)) static void child_work(void)
{
    char *volatile p = malloc(77); /* expect: leak definite child */
    memset(p, 'c', 77);
    p = NULL;
}

int main(void)
{
    pid_t child = fork();
    if (child < 0)
        return 1;
    if (child == 0) {
        say("child", getpid());
        child_work();
        sample_forget();
        exit(0);                        /* exit(), not _exit(): the leak check must run */
    }

    say("parent", getpid());
    parent_work();
    int status = 0;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return 1;
    sample_forget();
    return 0;
}
