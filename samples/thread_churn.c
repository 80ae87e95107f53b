/* thread_churn.c — threads made one after another, as a long-running server makes them:
 *
 *   thread_churn NTHREADS
 *
 * Each thread mallocs and frees a block and ends; main joins it before making the next.
 * Prints "maps before N" and "maps after N" (lines of /proc/self/maps after the first
 * thread and after the last), then "done". Nothing leaks, and a tool must not leave
 * anything of its own behind per thread: the two counts stay close. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static int count_mappings(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    int lines = 0, c;
    if (!f)
        return -1;
    while ((c = getc(f)) != EOF)
        lines += c == '\n';
    fclose(f);
    return lines;
}

static void *body(void *arg)
{
    char *volatile p = malloc(64);
    p[0] = (char)(size_t)arg;
    free(p);
    return NULL;
}

static int run_one(size_t i)
{
    pthread_t t;
    return pthread_create(&t, NULL, body, (void *)i) == 0 && pthread_join(t, NULL) == 0;
}

int main(int argc, char **argv)
{
    long n = argc == 2 ? strtol(argv[1], NULL, 10) : 0;
    if (n < 2) {
        fputs("usage: thread_churn NTHREADS (at least 2)\n", stderr);
        return 2;
    }
    if (!run_one(0))
        return 3;
    printf("maps before %d\n", count_mappings());
    for (long i = 1; i < n; i++)
        if (!run_one((size_t)i))
            return 3;
    printf("maps after %d\n", count_mappings());
    puts("done");
    return 0;
}
