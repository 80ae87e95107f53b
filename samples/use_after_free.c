/* use_after_free.c — one access to a freed block per run, chosen by argv[1]:
 *
 *   read            reads byte 5 of a freed 40-byte block and prints it ("value 0xNN")
 *   write           writes byte 5 of a freed 40-byte block
 *   realloc_read    keeps the old pointer of a 24-byte block that realloc grew to 4000
 *                   bytes (and so moved), and reads byte 3 through it
 *   realloc_write   the same, writing
 *   thread_free_read  the block is freed on a second thread, then read on the main one
 *
 * Every case prints "block <address> size <size>" for the block that is accessed after its
 * free (realloc cases: "moved yes" when realloc returned a new address), then "accessed",
 * "done", and returns 0. stdout is unbuffered: nothing printed before a fault is lost.
 *
 * Expected (valgrind 3.19 agrees, one error per run, the program runs to "done"):
 *   InvalidRead/InvalidWrite of size 1 at the "... access" line, "Address ... is K bytes
 *   inside a block of size S free'd" with the free stack at "free" (realloc cases: at
 *   "realloc", which freed the old block) and the alloc stack at "alloc".
 *   All heap blocks were freed. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) static char *make_block(size_t size)
{
    char *p = malloc(size); /* expect: alloc */
    memset(p, 'u', size);
    printf("block %p size %zu\n", (void *)p, size);
    return p;
}

__attribute__((noinline)) static void release(char *p)
{
    free(p); /* expect: free */
}

__attribute__((noinline)) static int read_after_free(void)
{
    char *volatile p = make_block(40);
    release(p);
    unsigned char value = p[5]; /* expect: read access */
    printf("value 0x%02x\n", value);
    return 0;
}

__attribute__((noinline)) static int write_after_free(void)
{
    char *volatile p = make_block(40);
    release(p);
    p[5] = 'W'; /* expect: write access */
    return 0;
}

/* The old block of a realloc that moved; the new block is freed before returning. */
__attribute__((noinline)) static char *realloc_moved(char **grown)
{
    char *volatile old = make_block(24);
    char *volatile bigger = realloc(old, 4000); /* expect: realloc */
    if (bigger == NULL)
        exit(3);
    printf("moved %s\n", bigger != old ? "yes" : "no");
    *grown = bigger;
    return old;
}

__attribute__((noinline)) static int realloc_read(void)
{
    char *grown;
    char *volatile old = realloc_moved(&grown);
    unsigned char value = old[3]; /* expect: realloc read access */
    printf("value 0x%02x\n", value);
    free(grown);
    return 0;
}

__attribute__((noinline)) static int realloc_write(void)
{
    char *grown;
    char *volatile old = realloc_moved(&grown);
    old[3] = 'W'; /* expect: realloc write access */
    free(grown);
    return 0;
}

static void *free_on_thread(void *p)
{
    release(p);
    return NULL;
}

__attribute__((noinline)) static int thread_free_read(void)
{
    char *volatile p = make_block(40);
    pthread_t t;
    if (pthread_create(&t, NULL, free_on_thread, p) != 0 || pthread_join(t, NULL) != 0)
        return 3;
    unsigned char value = p[5]; /* expect: thread free read access */
    printf("value 0x%02x\n", value);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    static const struct {
        const char *name;
        int (*run)(void);
    } cases[] = {
        {"read", read_after_free},
        {"write", write_after_free},
        {"realloc_read", realloc_read},
        {"realloc_write", realloc_write},
        {"thread_free_read", thread_free_read},
    };
    for (size_t i = 0; argc == 2 && i < sizeof cases / sizeof cases[0]; i++) {
        if (strcmp(argv[1], cases[i].name) == 0) {
            int rc = cases[i].run();
            puts("accessed");
            puts("done");
            return rc;
        }
    }
    fputs("usage: use_after_free read|write|realloc_read|realloc_write|thread_free_read\n", stderr);
    return 2;
}
