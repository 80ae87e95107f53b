/* clean_edges.c — touches every odd-sized (and even-sized) block from 1 to 64 bytes exactly
 * up to its last byte and no further: byte by byte writes and reads, memset, memcpy,
 * memcmp, memchr, and string functions (strlen, strcpy, strcmp, strchr) on strings that end
 * on the block's last byte. libc's vectorised string functions read aligned words that may
 * extend past the block inside its page: a checker must not flag them. The same on calloc
 * blocks and on blocks grown by realloc to their new last byte.
 * Prints "clean_edges: ok" and ends with status 0 (status 1 on a wrong result).
 *
 * Expected (valgrind 3.19 agrees): ERROR SUMMARY: 0 errors; All heap blocks were freed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_failed;

static void fail(const char *what, size_t n)
{
    printf("FAILED: %s (size %zu)\n", what, n);
    g_failed = 1;
}

static void touch_to_last_byte(char *p, size_t n)
{
    volatile char *v = p;
    for (size_t i = 0; i < n; i++)
        v[i] = (char)('a' + i % 26);
    for (size_t i = 0; i < n; i++)
        if (v[i] != (char)('a' + i % 26))
            fail("byte readback", n);
    char *copy = malloc(n);
    memcpy(copy, p, n);
    if (memcmp(copy, p, n) != 0)
        fail("memcpy/memcmp", n);
    if (memchr(p, p[n - 1], n) == NULL || memchr(p, '#', n) != NULL)
        fail("memchr", n);
    memset(p, 'z', n - 1);
    p[n - 1] = '\0';                      /* a string whose NUL is the last byte */
    if (strlen(p) != n - 1 || strchr(p, '#') != NULL)
        fail("strlen/strchr", n);
    strcpy(copy, p);
    if (strcmp(copy, p) != 0)
        fail("strcpy/strcmp", n);
    free(copy);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);   /* no stdio buffer left on the heap at exit */
    for (size_t n = 1; n <= 64; n++) {
        char *p = malloc(n);
        touch_to_last_byte(p, n);
        free(p);

        char *z = calloc(n, 1);
        if (z[n - 1] != 0)
            fail("calloc last byte", n);
        touch_to_last_byte(z, n);
        free(z);

        char *r = malloc(n);
        r[n - 1] = 'r';
        char *grown = realloc(r, n + 1);
        if (grown[n - 1] != 'r')
            fail("realloc kept last byte", n);
        grown[n] = 'R';                   /* the new last byte */
        touch_to_last_byte(grown, n + 1);
        free(grown);
    }
    puts(g_failed ? "clean_edges: FAILED" : "clean_edges: ok");
    return g_failed;
}
