/* overlap.c — the copying string functions given overlapping source and destination, each
 * at its own marked line, then the same calls on separate buffers and a memmove (clean).
 * Each overlap is a report and nothing else: the copies are done and the program ends with
 * status 0. Each source lies after its destination, so that any copy order, front to
 * back, gives the same result (a source that ends on the destination's own terminator
 * would make a byte-by-byte strcat run on forever).
 * Expected (valgrind 3.19 agrees on strcpy and strncpy, the two it checks here; it lets the
 * others pass): Overlap at "strcpy" ("Source and destination overlap in strcpy(D, S)"),
 * at "strncpy" (with ", 4)"), and memtrace also at "strcat", "strncat" (", 2)"), "stpcpy"
 * and "stpncpy" (", 4)"). No other error; nothing in use at exit. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Through volatile pointers, so that the compiler calls the functions and does not fold them. */
static char *(*volatile copy)(char *, const char *) = strcpy;
static char *(*volatile copy_n)(char *, const char *, size_t) = strncpy;
static char *(*volatile append)(char *, const char *) = strcat;
static char *(*volatile append_n)(char *, const char *, size_t) = strncat;
static char *(*volatile copy_end)(char *, const char *) = stpcpy;
static char *(*volatile copy_end_n)(char *, const char *, size_t) = stpncpy;

static void show(const char *what, const char *dst, const char *src)
{
    printf("%s %p %p\n", what, (const void *)dst, (const void *)src);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);   /* no stdio buffer on the heap */
    char *buf = malloc(64);
    strcpy(buf, "abcdefgh");
    show("strcpy", buf, buf + 4);
    copy(buf, buf + 4); /* expect: strcpy */
    strcpy(buf, "abcdefgh");
    show("strncpy", buf, buf + 2);
    copy_n(buf, buf + 2, 4); /* expect: strncpy */
    memcpy(buf, "ab\0xyz", 7);
    show("strcat", buf, buf + 3);
    append(buf, buf + 3); /* expect: strcat */
    memcpy(buf, "ab\0xyz", 7);
    show("strncat", buf, buf + 3);
    append_n(buf, buf + 3, 2); /* expect: strncat */
    strcpy(buf, "abcdefgh");
    show("stpcpy", buf, buf + 4);
    copy_end(buf, buf + 4); /* expect: stpcpy */
    strcpy(buf, "abcdefgh");
    show("stpncpy", buf, buf + 2);
    copy_end_n(buf, buf + 2, 4); /* expect: stpncpy */

    char other[64];
    copy(other, buf);
    append(other, buf);
    copy_n(other, buf, 8);
    append_n(other, buf, 2);
    memmove(buf + 1, buf, 9);
    printf("%s %s\n", buf, other);
    free(buf);
    return 0;
}
