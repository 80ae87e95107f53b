/* bad_free.c — frees of pointers that are not (or no longer) the start of a live block:
 * a double free, and invalid frees of a stack address, of a global's address, of an
 * interior pointer of a live block and of a pointer the allocator never returned (inside
 * the program's own mmap). Each case is at its own marked line; every free is a report and
 * nothing else (valgrind's behaviour): the program goes on, prints one line per case and
 * ends with status 0. Each line also carries the address involved so that the tests can
 * match the report's "address" (and "block") to it.
 *
 * Expected (valgrind 3.19 agrees, ERROR SUMMARY: 5 errors from 5 contexts):
 *   InvalidFree at "double-free": "0 bytes inside a block of size 32 free'd" at "first
 *     free", block alloc'd at "alloc double"
 *   InvalidFree at "invalid-free stack": "is on thread 1's stack"
 *   InvalidFree at "invalid-free global": "is 0 bytes inside data symbol "g_table""
 *   InvalidFree at "invalid-free interior": "8 bytes inside a block of size 48 alloc'd" at
 *     "alloc interior"; the block is then freed properly
 *   InvalidFree at "invalid-free mmap": "is in a rw- anonymous segment"
 *   All heap blocks were freed (valgrind's "total heap usage" counts the 5 bad frees among
 *   its frees: 2 allocs, 7 frees). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static char g_table[64];

__attribute__((noinline)) static void double_free(void)
{
    char *volatile p = malloc(32); /* expect: alloc double */
    memset(p, 'd', 32);
    printf("double-free block %p\n", (void *)p);
    free(p); /* expect: first free */
    free(p); /* expect: double-free */
}

__attribute__((noinline)) static void free_stack_address(void)
{
    char local[32];
    char *volatile p = local;
    memset(local, 's', sizeof local);
    printf("invalid-free stack %p\n", (void *)p);
    free(p); /* expect: invalid-free stack */
    if (local[0] != 's')
        puts("stack buffer changed");
}

__attribute__((noinline)) static void free_global_address(void)
{
    char *volatile p = g_table;
    printf("invalid-free global %p\n", (void *)p);
    free(p); /* expect: invalid-free global */
}

__attribute__((noinline)) static void free_interior_pointer(void)
{
    char *volatile p = malloc(48); /* expect: alloc interior */
    memset(p, 'i', 48);
    char *volatile inside = p + 8;
    printf("invalid-free interior %p block %p\n", (void *)inside, (void *)p);
    free(inside); /* expect: invalid-free interior */
    /* The block is still live and intact: the bad free freed nothing. */
    if (p[0] != 'i' || p[47] != 'i')
        puts("live block changed");
    free(p); /* expect: free interior block */
}

__attribute__((noinline)) static void free_never_allocated(void)
{
    char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) {
        perror("mmap");
        exit(3);
    }
    char *volatile p = page + 64;
    printf("invalid-free mmap %p\n", (void *)p);
    free(p); /* expect: invalid-free mmap */
    munmap(page, 4096);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);   /* no stdio buffer on the heap; lines out at once */
    double_free();
    free_stack_address();
    free_global_address();
    free_interior_pointer();
    free_never_allocated();
    puts("bad_free: end");
    return 0;
}
