/* leakscan.c — a program that exits with many live heap blocks, for timing the exit-time
 * leak scan (bench/run.py builds it).
 *
 *   leakscan NBLOCKS STAMPFILE
 *
 * Allocates NBLOCKS 32-byte nodes: a singly linked list hanging from a global (so every
 * block is reachable and the scan has to follow all of them), each node also pointing
 * 7 nodes back (so the scan meets pointers to already-marked blocks too). At the very end
 * of main it writes CLOCK_MONOTONIC in nanoseconds to STAMPFILE; run.py takes the time
 * from there to the moment wait4() returns, i.e. the exit path: destructors, memtrace's
 * leak scan and log writing, and the kernel tearing the process down.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct node {
    struct node *next;
    struct node *back;
    uint64_t value;
    uint64_t pad;
};

struct node *list_head;

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: leakscan NBLOCKS STAMPFILE\n");
        return 2;
    }
    long n = atol(argv[1]);
    struct node *ring[8] = {0};
    uint64_t sum = 0;
    for (long i = 0; i < n; i++) {
        struct node *p = malloc(sizeof *p);
        if (!p)
            return 1;
        p->next = list_head;
        p->back = ring[i & 7];
        p->value = (uint64_t)i * 2654435761u;
        p->pad = 0;
        ring[i & 7] = p;
        list_head = p;
        sum += p->value & 0xff;
    }
    printf("blocks=%ld sum=%llu\n", n, (unsigned long long)sum);
    fflush(stdout);

    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%lld\n", (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec);
    int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, buf, (size_t)len) != len)
        return 1;
    close(fd);
    return 0;
}
