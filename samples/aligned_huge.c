/* aligned_huge.c — blocks aligned to 2 MiB (as huge-page-backed buffers are), each of one
 * page, touched on their first byte only. The allocator must not write the alignment
 * slack before each block: that would make 2 MiB resident per block.
 *
 * Prints "resident MIB" (how much the process's resident memory grew while 64 such
 * blocks were live) and "done"; returns 0. Clean under valgrind 3.19. */
#include <stdio.h>
#include <stdlib.h>

#define BLOCKS 64
#define ALIGN (2ul << 20)

static long resident_pages(void)
{
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = -1;
    if (f)
        fclose(f);
    return resident;
}

int main(void)
{
    void *blocks[BLOCKS];
    long before = resident_pages();
    for (int i = 0; i < BLOCKS; i++) {
        if (posix_memalign(&blocks[i], ALIGN, 4096) != 0 || (size_t)blocks[i] % ALIGN)
            return 1;
        ((char *)blocks[i])[0] = 1;
    }
    printf("resident %ld\n", (resident_pages() - before) * 4096 >> 20);
    for (int i = 0; i < BLOCKS; i++)
        free(blocks[i]);
    puts("done");
    return 0;
}
