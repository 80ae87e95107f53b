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

/* Puts text (len bytes, its NULs kept) in buf, prints "WHAT DST SRC" for the call about to
 * copy from buf + from into buf, and returns the source. */
static const char *prepare(char *buf, const char *text, size_t len, const char *what, size_t from)
{
    memcpy(buf, text, len);
    printf("%s %p %p\n", what, (void *)buf, (void *)(buf + from));
    return buf + from;
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);   /* no stdio buffer on the heap */
    char *buf = malloc(64);
    const char *src = prepare(buf, "abcdefgh", 9, "strcpy", 4);
    copy(buf, src); /* expect: strcpy */
    src = prepare(buf, "abcdefgh", 9, "strncpy", 2);
    copy_n(buf, src, 4); /* expect: strncpy */
    src = prepare(buf, "ab\0xyz", 7, "strcat", 3);
    append(buf, src); /* expect: strcat */
    src = prepare(buf, "ab\0xyz", 7, "strncat", 3);
    append_n(buf, src, 2); /* expect: strncat */
    src = prepare(buf, "abcdefgh", 9, "stpcpy", 4);
    copy_end(buf, src); /* expect: stpcpy */
    src = prepare(buf, "abcdefgh", 9, "stpncpy", 2);
    copy_end_n(buf, src, 4); /* expect: stpncpy */

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
