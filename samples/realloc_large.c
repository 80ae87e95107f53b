/* realloc_large.c — realloc of blocks past the guarded size (64 KiB), which memtrace
 * resizes through glibc rather than moving itself (docs/corruption.md). One case per run,
 * chosen by argv[1]:
 *
 *   grow_overflow     malloc(100000), realloc to 300000, writes p[300000], frees
 *   shrink_overflow   malloc(300000), realloc to 70000, writes p[70000], frees
 *   underflow         malloc(100000), writes p[-1], reallocs to 200000, frees
 *   leak              malloc(200000), realloc to 400000, and the pointer is dropped
 *   shrink            malloc(300000), realloc to 70000; prints "moved yes|no", frees
 *   chains            grows 70000 -> 8 MiB by doubling and shrinks back, checking the
 *                     contents at every step; frees everything
 *
 * Each case prints "block <address> size <size>" for its final block (not chains) and
 * "done", and returns 0 (1 when chains finds its contents changed). Under valgrind 3.19:
 * the overflow cases are an Invalid write at "write" (0 bytes after a block of the new
 * size alloc'd at "realloc"); underflow an Invalid write 1 byte before a block of size
 * 100000; leak 400000 bytes definitely lost at "realloc"; shrink and chains are clean. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *volatile g_dropped;

__attribute__((noinline)) static char *grow(char *p, size_t size)
{
    return realloc(p, size); /* expect: realloc */
}

__attribute__((noinline)) static void poke(char *p, long offset)
{
    p[offset] = 'X'; /* expect: write */
}

__attribute__((noinline)) static void release(char *p)
{
    free(p); /* expect: free */
}

static void show(const char *p, size_t size)
{
    printf("block %p size %zu\n", (const void *)p, size);
}

static int overflow_after_resize(size_t from, size_t to)
{
    char *p = malloc(from); /* expect: alloc */
    memset(p, 'a', from);
    p = grow(p, to);
    show(p, to);
    poke(p, (long)to);
    release(p);
    return 0;
}

static int underflow_then_resize(void)
{
    char *p = malloc(100000); /* expect: alloc underflow */
    poke(p, -1);
    p = grow(p, 200000);
    show(p, 200000);
    release(p);
    return 0;
}

static int leak(void)
{
    char *p = grow(malloc(200000), 400000);
    show(p, 400000);
    g_dropped = p;
    g_dropped = NULL;
    return 0;
}

static int shrink(void)
{
    char *p = malloc(300000);
    char *q = grow(p, 70000);
    show(q, 70000);
    printf("moved %s\n", q == p ? "no" : "yes");
    release(q);
    return 0;
}

static int chains(void)
{
    size_t size = 70000;
    unsigned char *p = malloc(size);
    for (size_t i = 0; i < size; i++)
        p[i] = (unsigned char)(i * 7);
    for (; size < 8u << 20; size *= 2) {
        p = (unsigned char *)grow((char *)p, size * 2);
        for (size_t i = size; i < size * 2; i++)
            p[i] = (unsigned char)(i * 7);
    }
    for (; size > 70000; size /= 2)
        p = (unsigned char *)grow((char *)p, size / 2);
    for (size_t i = 0; i < size; i++)
        if (p[i] != (unsigned char)(i * 7))
            return 1;
    release((char *)p);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc != 2) {
        fputs("usage: realloc_large grow_overflow|shrink_overflow|underflow|leak|shrink|chains\n", stderr);
        return 2;
    }
    const char *c = argv[1];
    int status = !strcmp(c, "grow_overflow")     ? overflow_after_resize(100000, 300000)
                 : !strcmp(c, "shrink_overflow") ? overflow_after_resize(300000, 70000)
                 : !strcmp(c, "underflow")       ? underflow_then_resize()
                 : !strcmp(c, "leak")            ? leak()
                 : !strcmp(c, "shrink")          ? shrink()
                 : !strcmp(c, "chains")          ? chains()
                                                 : 2;
    puts("done");
    return status;
}
