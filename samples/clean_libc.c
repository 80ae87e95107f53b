/* clean_libc.c — libc functions that allocate on the program's behalf, used correctly:
 * strdup/strndup, asprintf, getline (buffer grown by libc, freed by us) over a tmpfile,
 * fopen/fgets/fclose of /proc/self/status, qsort of a heap array of heap strings,
 * opendir/readdir/closedir, and a realpath result. Everything is freed or closed.
 * Prints "clean_libc: ok" and ends with status 0 (status 1 on a wrong result).
 *
 * Expected (valgrind 3.19 agrees): ERROR SUMMARY: 0 errors; All heap blocks were freed. */
#define _GNU_SOURCE
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_failed;

static void fail(const char *what)
{
    printf("FAILED: %s\n", what);
    g_failed = 1;
}

static int by_string(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void strings(void)
{
    static const char *words[] = {"pear", "apple", "fig", "banana", "cherry", "kiwi", "date"};
    enum { N = sizeof words / sizeof words[0] };
    char **list = malloc(N * sizeof *list);
    for (int i = 0; i < N; i++)
        list[i] = (i % 2) ? strdup(words[i]) : strndup(words[i], 3);
    qsort(list, N, sizeof *list, by_string);
    for (int i = 1; i < N; i++)
        if (strcmp(list[i - 1], list[i]) > 0)
            fail("qsort order");
    char *joined = NULL;
    if (asprintf(&joined, "%s-%s-%d", list[0], list[N - 1], N) < 0 || strlen(joined) < 5)
        fail("asprintf");
    free(joined);
    for (int i = 0; i < N; i++)
        free(list[i]);
    free(list);
}

static void lines(void)
{
    FILE *f = tmpfile();
    if (f == NULL) {
        fail("tmpfile");
        return;
    }
    for (int i = 0; i < 200; i++)
        fprintf(f, "line %d %.*s\n", i, i * 3, "................................................"
                "................................................................................"
                "................................................................................"
                "................................................................................"
                "................................................................................"
                "................................................................................"
                "................................................................................");
    rewind(f);
    char *line = NULL;
    size_t cap = 0;
    int count = 0;
    while (getline(&line, &cap, f) != -1)
        count++;
    if (count != 200)
        fail("getline count");
    free(line);
    fclose(f);

    FILE *status = fopen("/proc/self/status", "r");
    if (status == NULL) {
        fail("fopen /proc/self/status");
        return;
    }
    char buf[256];
    int found = 0;
    while (fgets(buf, sizeof buf, status))
        found |= strncmp(buf, "Pid:", 4) == 0;
    if (!found)
        fail("no Pid: line");
    fclose(status);
}

static void directories(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) {
        fail("opendir");
        return;
    }
    int entries = 0;
    while (readdir(d) != NULL)
        entries++;
    closedir(d);
    if (entries < 3)
        fail("readdir");
    char *real = realpath("/proc/self/exe", NULL);
    if (real == NULL || real[0] != '/')
        fail("realpath");
    free(real);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);   /* no stdio buffer left on the heap at exit */
    strings();
    lines();
    directories();
    puts(g_failed ? "clean_libc: FAILED" : "clean_libc: ok");
    return g_failed;
}
