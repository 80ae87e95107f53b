/* spawn.c — runs one command and records its wall time and peak RSS (bench/run.py builds
 * it and starts every measured command through it).
 *
 *   spawn RESULTFILE [NAME=VALUE...] -- PROGRAM ARGS...
 *
 * NAME=VALUE words are put in the command's environment only (LD_PRELOAD must not load a
 * tool into this process: memtrace's runtime, for one, drops itself from LD_PRELOAD so that
 * what it execs is not traced).
 * Why not fork from Python directly: Linux folds the pre-exec image of a forked child into
 * its ru_maxrss, so every command started by the (~15 MB) Python process would show at
 * least Python's RSS. This small process forks and execs the command itself, waits with
 * wait4 and writes one line to RESULTFILE:
 *   wall_ns=N maxrss_kb=N status=N end_ns=N
 * wall_ns: CLOCK_MONOTONIC from just before fork to wait4's return; maxrss_kb: ru_maxrss of
 * the command's process tree (the largest process among it and the descendants it waited
 * for; Linux does not sum them); status: the raw wait status; end_ns: CLOCK_MONOTONIC when
 * wait4 returned. stdin, stdout and stderr are passed through. When the command is killed
 * with the whole process group (run.py's timeout), no line is written.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    int cmd = 2;
    while (cmd < argc && strcmp(argv[cmd], "--") != 0)
        cmd++;
    if (argc < 3 || cmd + 1 >= argc) {
        fprintf(stderr, "usage: spawn RESULTFILE [NAME=VALUE...] -- PROGRAM ARGS...\n");
        return 125;
    }
    long long t0 = now_ns();
    pid_t pid = fork();
    if (pid < 0) {
        perror("spawn: fork");
        return 125;
    }
    if (pid == 0) {
        for (int i = 2; i < cmd; i++)
            if (putenv(argv[i]) != 0)
                _exit(126);
        execvp(argv[cmd + 1], argv + cmd + 1);
        fprintf(stderr, "spawn: cannot run %s\n", argv[cmd + 1]);
        _exit(127);
    }
    int status;
    struct rusage ru;
    pid_t got;
    while ((got = wait4(pid, &status, 0, &ru)) < 0 && errno == EINTR)
        ;
    long long t1 = now_ns();
    if (got != pid) {
        perror("spawn: wait4");
        return 125;
    }
    FILE *out = fopen(argv[1], "w");
    if (!out) {
        perror("spawn: result file");
        return 125;
    }
    fprintf(out, "wall_ns=%lld maxrss_kb=%ld status=%d end_ns=%lld\n", t1 - t0, ru.ru_maxrss, status, t1);
    return fclose(out) == 0 ? 0 : 125;
}
