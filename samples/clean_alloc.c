/* clean_alloc.c — correct use of every allocation API, to be reported with ZERO errors:
 *   aligned_alloc / posix_memalign / memalign of every power-of-two alignment from 1 (or
 *   sizeof(void *)) to 64 KiB, valloc (valgrind does not implement pvalloc), on sizes that are and are not multiples
 *   of the alignment (each block checked for its alignment and written end to end);
 *   realloc growth (1 byte to 1 MiB, doubling) and shrink chains that keep the contents;
 *   realloc(NULL, n); calloc (checked zeroed, small and mmap-sized); malloc(0) and
 *   calloc(0, n) blocks (freed); free(NULL); writes up to malloc_usable_size.
 * Prints "clean_alloc: ok" and ends with status 0 (status 1 and a line on a wrong result).
 *
 * Expected (valgrind 3.19 agrees): ERROR SUMMARY: 0 errors; All heap blocks were freed. */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int g_failed;

static void check(int ok, const char *what, size_t a, size_t b)
{
    if (!ok) {
        printf("FAILED: %s (%zu, %zu)\n", what, a, b);
        g_failed = 1;
    }
}

static void fill_and_free(void *p, size_t size, size_t align, const char *what)
{
    check(p != NULL, what, align, size);
    if (p == NULL)
        return;
    check((uintptr_t)p % align == 0, what, align, size);
    memset(p, 0x5a, size);
    volatile unsigned char *b = p;
    check(b[0] == 0x5a && b[size - 1] == 0x5a, what, align, size);
    free(p);
}

static void aligned_apis(void)
{
    static const size_t extra[] = {1, 13, 100};
    for (size_t align = 1; align <= 65536; align *= 2) {
        for (size_t k = 0; k < 3; k++) {
            /* A multiple of the alignment (aligned_alloc's contract), and odd sizes. */
            size_t sizes[] = {align, 3 * align, extra[k], align + extra[k]};
            for (size_t s = 0; s < 4; s++) {
                size_t size = sizes[s];
                if (size % align == 0)
                    fill_and_free(aligned_alloc(align, size), size, align, "aligned_alloc");
                fill_and_free(memalign(align, size), size, align, "memalign");
                if (align >= sizeof(void *)) {
                    void *p = NULL;
                    check(posix_memalign(&p, align, size) == 0, "posix_memalign rc", align, size);
                    fill_and_free(p, size, align, "posix_memalign");
                }
            }
        }
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    fill_and_free(valloc(100), 100, page, "valloc");
    fill_and_free(valloc(page + 1), page + 1, page, "valloc");
}

static void realloc_chains(void)
{
    /* Growth: every step keeps the bytes written so far. */
    unsigned char *p = realloc(NULL, 1);
    check(p != NULL, "realloc(NULL, 1)", 0, 1);
    p[0] = 0;
    size_t size = 1;
    while (size < (1u << 20)) {
        size_t next = size * 2 + (size & 1);        /* 1, 3, 7, 15, ... odd sizes */
        unsigned char *q = realloc(p, next);
        check(q != NULL, "realloc grow", size, next);
        for (size_t i = 0; i < size; i += size / 8 + 1)
            check(q[i] == (unsigned char)i, "realloc grow kept", i, next);
        for (size_t i = size; i < next; i++)
            q[i] = (unsigned char)i;
        p = q;
        size = next;
    }
    /* Shrink: back down by thirds, the kept prefix intact. */
    while (size > 1) {
        size_t next = size / 3 ? size / 3 : 1;
        unsigned char *q = realloc(p, next);
        check(q != NULL, "realloc shrink", size, next);
        check(q[0] == 0 && q[next - 1] == (unsigned char)(next - 1), "realloc shrink kept", size, next);
        q[next - 1] = (unsigned char)(next - 1);
        p = q;
        size = next;
    }
    free(p);
}

static void calloc_blocks(void)
{
    static const size_t counts[] = {1, 7, 13, 100, 4096, 300000};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        unsigned char *p = calloc(counts[i], 3);
        check(p != NULL, "calloc", counts[i], 3);
        for (size_t j = 0; j < counts[i] * 3; j++)
            if (p[j] != 0) {
                check(0, "calloc zeroed", counts[i], j);
                break;
            }
        memset(p, 1, counts[i] * 3);
        free(p);
    }
}

static void zero_sizes(void)
{
    void *a = malloc(0), *b = malloc(0), *c = calloc(0, 8);
    check(a != NULL && b != NULL && a != b, "malloc(0) gives distinct blocks", 0, 0);
    free(a);
    free(b);
    free(c);
    free(NULL);
}

static void usable_size(void)
{
    for (size_t n = 1; n <= 100; n += 11) {
        unsigned char *p = malloc(n);
        size_t usable = malloc_usable_size(p);
        check(usable >= n, "malloc_usable_size", n, usable);
        memset(p, 0x11, usable);        /* all of it belongs to the program */
        free(p);
    }
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);   /* no stdio buffer left on the heap at exit */
    aligned_apis();
    realloc_chains();
    calloc_blocks();
    zero_sizes();
    usable_size();
    puts(g_failed ? "clean_alloc: FAILED" : "clean_alloc: ok");
    return g_failed;
}
