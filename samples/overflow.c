/* overflow.c — one out-of-bounds heap access per run, chosen by argv[1]:
 *
 *     [thread_][aligned16_|int5_]{overflow|underflow}_{read|write}_N
 *
 *   overflow_write_1     writes the byte just past a 13-byte block (p[13])
 *   overflow_read_300    reads 300 bytes past its last byte (p[12 + 300])
 *   underflow_write_1    writes the byte just before it (p[-1])
 *   underflow_read_300   reads p[-300]
 *   aligned16_...        the same on a 16-byte block (p[16], p[-1], ...)
 *   int5_...             the same on a 20-byte block, an array of 5 ints
 *   thread_...           the same, with the block allocated and accessed on a second thread
 *
 * A case allocates the block at "alloc", prints "block <address> size <size>", makes the
 * one bad access at "write" or "read" (1 byte), prints "accessed", frees the block at
 * "free", prints "freed" and "done", and returns 0. stdout is unbuffered, so the lines
 * printed before a fatal fault are not lost.
 *
 * Expected under valgrind 3.19 (the program always runs to "done", status 0):
 *   N = 1, overflow:   InvalidWrite/InvalidRead of size 1 at "write"/"read", "Address ... is
 *                      0 bytes after a block of size S alloc'd" at "alloc"
 *   N = 1, underflow:  the same, "Address ... is 1 bytes before a block of size S alloc'd"
 *   N = 300, overflow: InvalidWrite/InvalidRead at the same line, but described as "... bytes
 *                      inside an unallocated block of size ... in arena "client"" (past
 *                      valgrind's 16-byte redzone, not tied to the block)
 *   N = 300, underflow: nothing (the address is memory valgrind considers addressable)
 *   All heap blocks were freed.
 * Under memtrace see tests/e2e/test_overflow.py: every case is caught. By default an
 * overflow faults at the access and an underflow write is found when the block is freed;
 * with --guard-side=underflow the other way round. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bad_access {
    size_t size;       /* of the block */
    long offset;       /* of the bad byte from the block's start */
    int write;
};

volatile char g_sink;

__attribute__((noinline)) static void poke(char *p, long offset)
{
    p[offset] = 'X'; /* expect: write */
}

__attribute__((noinline)) static void peek(const char *p, long offset)
{
    g_sink = p[offset]; /* expect: read */
}

__attribute__((noinline)) static void run_case(const struct bad_access *c)
{
    char *volatile p = malloc(c->size); /* expect: alloc */
    memset(p, 'a', c->size);
    printf("block %p size %zu\n", (void *)p, c->size);
    if (c->write)
        poke(p, c->offset);
    else
        peek(p, c->offset);
    puts("accessed");
    free(p); /* expect: free */
    puts("freed");
}

static void *thread_body(void *arg)
{
    run_case(arg); /* expect: thread calls run_case */
    return NULL;
}

static int usage(void)
{
    fputs("usage: overflow [thread_][aligned16_]{overflow|underflow}_{read|write}_N\n", stderr);
    return 2;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc != 2)
        return usage();
    const char *name = argv[1];
    int in_thread = 0;
    struct bad_access c = {13, 0, 0};
    if (strncmp(name, "thread_", 7) == 0) {
        in_thread = 1;
        name += 7;
    }
    if (strncmp(name, "aligned16_", 10) == 0) {
        c.size = 16;
        name += 10;
    } else if (strncmp(name, "int5_", 5) == 0) {
        c.size = 5 * sizeof(int);
        name += 5;
    }
    int under;
    if (strncmp(name, "overflow_", 9) == 0) {
        under = 0;
        name += 9;
    } else if (strncmp(name, "underflow_", 10) == 0) {
        under = 1;
        name += 10;
    } else {
        return usage();
    }
    if (strncmp(name, "write_", 6) == 0) {
        c.write = 1;
        name += 6;
    } else if (strncmp(name, "read_", 5) == 0) {
        name += 5;
    } else {
        return usage();
    }
    char *end;
    long distance = strtol(name, &end, 10);
    if (*name == '\0' || *end != '\0' || distance < 1 || distance > 3000)
        return usage();
    /* distance 1 is the first byte outside the block on that side. */
    c.offset = under ? -distance : (long)c.size - 1 + distance;

    if (in_thread) {
        pthread_t t;
        if (pthread_create(&t, NULL, thread_body, &c) != 0 || pthread_join(t, NULL) != 0)
            return 3;
    } else {
        run_case(&c); /* expect: main calls run_case */
    }
    puts("done");
    return 0;
}
