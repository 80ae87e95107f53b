/* loop_blocks.c — one bad read of the 11th of 20 blocks made at one call site in a loop
 * (--guard=auto guards each site's first two blocks and then the 4th, 8th, 16th ...: the
 * 11th only because it is among the program's first allocations). argv[1]:
 *
 *   overflow   reads byte 24 of the 11th block, one past its end
 *   uaf        frees every block, then reads byte 4 of the 11th
 *   late       makes 300 blocks at another site first, then reads past the 11th: past the
 *              program's first 128 allocations the 11th block has only redzones, which a
 *              read does not touch, so this run ends normally (what the bound gives up)
 *
 * Every case prints "block <address> size 24" for the 11th block, then "accessed" and
 * "done" if it is let run on. stdout is unbuffered.
 *
 * Expected (valgrind 3.19): overflow and late: InvalidRead of size 1 at "overflow read",
 * "0 bytes after a block of size 24 alloc'd" at "alloc"; uaf: InvalidRead of size 1 at
 * "uaf read", "4 bytes inside a block of size 24 free'd" at "free". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT 20
#define PICKED 10

static char *blocks[COUNT];

__attribute__((noinline)) static void make_blocks(void)
{
    for (int i = 0; i < COUNT; i++) {
        blocks[i] = malloc(24); /* expect: alloc */
        memset(blocks[i], 'a' + i, 24);
    }
    printf("block %p size 24\n", (void *)blocks[PICKED]);
}

__attribute__((noinline)) static void free_blocks(void)
{
    for (int i = 0; i < COUNT; i++)
        free(blocks[i]); /* expect: free */
}

__attribute__((noinline)) static void make_others(void)
{
    static char *others[300];
    for (int i = 0; i < 300; i++)
        others[i] = malloc(8);
    for (int i = 0; i < 300; i++)
        free(others[i]);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *mode = argc > 1 ? argv[1] : "overflow";
    char value;
    if (strcmp(mode, "late") == 0)
        make_others();
    make_blocks();
    if (strcmp(mode, "uaf") == 0) {
        free_blocks();
        value = *(volatile char *)&blocks[PICKED][4]; /* expect: uaf read */
    } else {
        value = *(volatile char *)&blocks[PICKED][24]; /* expect: overflow read */
        free_blocks();
    }
    printf("accessed %d\n", value != 0);
    printf("done\n");
    return 0;
}
