/* buffered_stdio.c — a clean program that leaves glibc holding what it frees only in
 * __libc_freeres, which valgrind calls as the process ends: stdout's buffer (stdout is a
 * pipe or a file under the tests, so fully buffered, and its last lines are still in the
 * buffer at exit), the buffer of a stream it never closes (argv[1], written once at exit
 * by glibc), and the time zone data localtime reads. memtrace frees them in a copy of the
 * process, which must write none of the pending output itself: each line once.
 *
 * Expected (valgrind 3.19): no errors; in use at exit: 0 bytes in 0 blocks, and with
 * argv[1] the unclosed stream's FILE itself (472 bytes in 1 block, still reachable): glibc
 * frees a stream's buffer at the end, never the stream. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv)
{
    time_t epoch = 0;
    struct tm when;
    localtime_r(&epoch, &when);
    FILE *kept = argc > 1 ? fopen(argv[1], "w") : NULL; /* expect: fopen */
    if (kept)
        fputs("written once, at exit\n", kept);
    char *scratch = malloc(32);
    strcpy(scratch, "scratch");
    free(scratch);
    for (int i = 0; i < 3; i++)
        printf("line %d\n", i);
    return when.tm_year >= 69 ? 0 : 1;
}
