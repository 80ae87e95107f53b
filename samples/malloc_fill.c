/* malloc_fill.c — reads fresh, never-written heap memory to show what a new block holds
 * (for --malloc-fill): a 13-byte block, 300 blocks of 64 bytes from one call site (so that,
 * under --guard=auto, later ones are not guarded) and a 100000-byte block. For each class
 * it prints the distinct byte value seen, e.g. "malloc 13: ab", or "malloc 13: mixed".
 * Not a corruption sample: reading uninitialised memory is the point (valgrind reports
 * uninitialised-value errors for it), so it has no valgrind parity test. Status 0. */
#include <stdio.h>
#include <stdlib.h>

static void show(const char *what, unsigned char **blocks, size_t count, size_t size)
{
    int first = -1, mixed = 0;
    for (size_t b = 0; b < count; b++)
        for (size_t i = 0; i < size; i++) {
            if (first < 0)
                first = blocks[b][i];
            else if (blocks[b][i] != first)
                mixed = 1;
        }
    if (mixed)
        printf("%s: mixed\n", what);
    else
        printf("%s: %02x\n", what, first);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    unsigned char *one = malloc(13);
    show("malloc 13", &one, 1, 13);
    free(one);

    static unsigned char *many[300];
    for (int i = 0; i < 300; i++)
        many[i] = malloc(64);
    show("malloc 64 x300", many, 300, 64);
    for (int i = 0; i < 300; i++)
        free(many[i]);

    unsigned char *big = malloc(100000);
    show("malloc 100000", &big, 1, 100000);
    free(big);
    return 0;
}
