/* clean_mmap.c — a program managing its own mappings correctly: anonymous regions
 * written and unmapped whole, a region unmapped piecewise (middle page first, then each
 * end), a MAP_FIXED remapping inside its own region, mprotect of its own pages (read-only
 * and back), mremap growth, a file mapping of a tmpfile, and one region left mapped at exit
 * (holding a heap pointer: the block is reachable, not lost). Pages of its own heap blocks
 * protected: a page-aligned block made read-only and back; a 256 KiB one made PROT_NONE
 * and freed so (glibc's free of an mmapped chunk never reads it); one kept at exit with
 * its second page PROT_NONE and, in its first, the only pointer to a 55-byte block
 * (reachable: the scan reads what it can). None of this is an error.
 * Prints "clean_mmap: ok" and ends with status 0 (status 1 on a wrong result).
 *
 * Expected (valgrind 3.19 agrees): ERROR SUMMARY: 0 errors; no definitely, indirectly or
 * possibly lost bytes (the blocks held by the mapping and the half-protected block are
 * still reachable). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int g_failed;

static void fail(const char *what)
{
    printf("FAILED: %s\n", what);
    g_failed = 1;
}

static char *map_anon(size_t len)
{
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return p;
}

int main(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);

    for (int i = 1; i <= 16; i++) {               /* whole regions */
        char *p = map_anon(i * page);
        memset(p, i, i * page);
        if (munmap(p, i * page) != 0)
            fail("munmap whole");
    }

    char *three = map_anon(3 * page);             /* piecewise */
    memset(three, 3, 3 * page);
    if (munmap(three + page, page) != 0 || munmap(three, page) != 0 ||
        munmap(three + 2 * page, page) != 0)
        fail("munmap piecewise");

    char *region = map_anon(4 * page);            /* MAP_FIXED over its own pages */
    char *fixed = mmap(region + page, 2 * page, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (fixed != region + page)
        fail("MAP_FIXED");
    memset(region, 'f', 4 * page);

    if (mprotect(region, page, PROT_READ) != 0 || region[0] != 'f' ||
        mprotect(region, page, PROT_READ | PROT_WRITE) != 0)
        fail("mprotect own pages");
    region[0] = 'F';

    char *grown = mremap(region, 4 * page, 64 * page, MREMAP_MAYMOVE);
    if (grown == MAP_FAILED || grown[0] != 'F' || grown[4 * page - 1] != 'f')
        fail("mremap");
    else {
        memset(grown + 4 * page, 'g', 60 * page);
        if (munmap(grown, 64 * page) != 0)
            fail("munmap after mremap");
    }

    FILE *f = tmpfile();
    if (f == NULL || fputs("mapped file contents\n", f) < 0 || fflush(f) != 0)
        fail("tmpfile");
    else {
        char *text = mmap(NULL, page, PROT_READ, MAP_PRIVATE, fileno(f), 0);
        if (text == MAP_FAILED || strncmp(text, "mapped file", 11) != 0)
            fail("file mapping");
        if (text != MAP_FAILED)
            munmap(text, page);
        fclose(f);
    }

    void *own = NULL;                             /* its own heap pages */
    if (posix_memalign(&own, page, 2 * page) != 0)
        exit(1);
    memset(own, 'o', 2 * page);
    if (mprotect(own, page, PROT_READ) != 0 || ((char *)own)[0] != 'o' ||
        mprotect(own, 2 * page, PROT_READ | PROT_WRITE) != 0)
        fail("mprotect of a heap block's pages");
    free(own);
    if (posix_memalign(&own, page, 64 * page) != 0 || mprotect(own, 64 * page, PROT_NONE) != 0)
        fail("PROT_NONE over a whole heap block");
    free(own);
    static void **half_protected;
    if (posix_memalign((void **)&half_protected, page, 2 * page) != 0)
        exit(1);
    half_protected[1] = malloc(55);
    memset(half_protected[1], 'h', 55);
    if (mprotect((char *)half_protected + page, page, PROT_NONE) != 0)
        fail("PROT_NONE over a heap block's second page");

    /* Still mapped at exit, and the only place a heap block's address is kept. */
    void **kept = (void **)map_anon(page);
    kept[10] = malloc(77);
    memset(kept[10], 'k', 77);

    puts(g_failed ? "clean_mmap: FAILED" : "clean_mmap: ok");
    return g_failed;
}
