/* bad_munmap.c — munmap of memory that is not the program's own mapping:
 *   1. a range the program never mapped (first checked with mincore: nothing is mapped
 *      there; otherwise the sample stops with status 3, since the case would be void);
 *   2. a page-aligned heap block (posix_memalign(4096, 8192)), i.e. pulling the allocator's
 *      memory away under it. The block is not used again afterwards and stays pointed to by
 *      a global (reachable, not a leak), whatever the tool did with the call;
 *   3. an mprotect (read-write, so harmless) of a heap block's page: a tool may or may not
 *      flag it.
 * Each case prints one line; the program ends with "bad_munmap: end" and status 0.
 *
 * Expected:
 *   valgrind 3.19: no error at all (memcheck does not check munmap or mprotect arguments);
 *   it does perform the heap munmap, after which its leak check calls case 2's block
 *   "8,192 bytes in 1 blocks definitely lost" although the global still points to it.
 *   memtrace: invalid-munmap at "invalid-munmap unmapped" and "invalid-munmap heap";
 *   at "mprotect heap" either nothing or an error (not checked strictly). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NEVER_MAPPED ((void *)0x200000000000ull)   /* 32 TiB: between the PIE and the mmap area */

void *g_heap_block;   /* case 2's block, kept reachable */

__attribute__((noinline)) static void unmap_never_mapped(size_t page)
{
    unsigned char vec[2];
    errno = 0;
    if (mincore(NEVER_MAPPED, 2 * page, vec) == 0 || errno != ENOMEM) {
        printf("%p is mapped: cannot test munmap of an unmapped range\n", NEVER_MAPPED);
        exit(3);
    }
    printf("invalid-munmap unmapped %p\n", NEVER_MAPPED);
    munmap(NEVER_MAPPED, 2 * page); /* expect: invalid-munmap unmapped */
}

__attribute__((noinline)) static void unmap_heap_block(size_t page)
{
    void *p = NULL;
    if (posix_memalign(&p, page, 2 * page) != 0) /* expect: alloc heap block */
        exit(3);
    memset(p, 'h', 2 * page);
    g_heap_block = p;
    printf("invalid-munmap heap %p\n", p);
    munmap(p, page); /* expect: invalid-munmap heap */
}

__attribute__((noinline)) static void mprotect_heap_block(size_t page)
{
    void *p = NULL;
    if (posix_memalign(&p, page, page) != 0)
        exit(3);
    memset(p, 'm', page);
    printf("mprotect heap %p\n", p);
    mprotect(p, page, PROT_READ | PROT_WRITE); /* expect: mprotect heap */
    ((char *)p)[0] = 'M';
    free(p);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    unmap_never_mapped(page);
    unmap_heap_block(page);
    mprotect_heap_block(page);
    puts("bad_munmap: end");
    return 0;
}
