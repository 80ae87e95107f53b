/* calloc_large.c — a 256 MiB calloc used sparsely, as hash tables and bitmaps often are.
 * Every byte must read zero, and the block's pages must not have been made resident by
 * the allocator (reading untouched anonymous memory maps the shared zero page, which
 * does not count as resident). It then writes one byte per MiB and frees the block.
 *
 * Prints "zero yes|no" and "resident MIB" (how much the process's resident memory grew
 * across the calloc and the read), then "done"; returns 0. Clean under valgrind 3.19
 * (which zeroes the whole block, so its resident growth is 256 MiB). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define SIZE (256ul << 20)

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
    long before = resident_pages();
    unsigned char *table = calloc(SIZE, 1);
    if (!table)
        return 1;
    unsigned long nonzero = 0;
    for (size_t i = 0; i < SIZE; i += sizeof(unsigned long))
        nonzero |= *(unsigned long *)(table + i);
    long grown = resident_pages() - before;
    printf("zero %s\n", nonzero ? "no" : "yes");
    printf("resident %ld\n", grown * sysconf(_SC_PAGESIZE) >> 20);
    for (size_t i = 0; i < SIZE; i += 1ul << 20)
        table[i] = 1;
    free(table);
    puts("done");
    return 0;
}
