/* sysv_shm.c — a program that keeps heap pointers in SysV shared memory (shmget/shmat),
 * as servers sharing a table with their workers do. The attached segment is the program's
 * memory, scanned for pointers like its mmaps; a segment detached again is not.
 * Expected (valgrind 3.19 agrees): 40 bytes in 1 blocks still reachable (held by the
 * attached segment); 72 bytes in 1 blocks definitely lost (held by the detached one). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>

#include "sample.h"

static void **attached;

/* A private segment, removed at once: it lives until its last detach (or exit). */
static void **attach_new_segment(void)
{
    int id = shmget(IPC_PRIVATE, 8192, IPC_CREAT | 0600);
    if (id < 0) {
        perror("shmget");
        exit(1);
    }
    void **p = shmat(id, NULL, 0);
    if (p == (void **)-1) {
        perror("shmat");
        exit(1);
    }
    shmctl(id, IPC_RMID, NULL);
    return p;
}

__attribute__((noinline)) static void keep_in_segment(void)
{
    attached = attach_new_segment();
    attached[700] = malloc(40); /* expect: reachable from shared memory */
    memset(attached[700], 's', 40);
}

__attribute__((noinline)) static void lose_with_segment(void)
{
    void **gone = attach_new_segment();
    gone[9] = malloc(72); /* expect: leak definite after shmdt */
    memset(gone[9], 'd', 72);
    if (shmdt(gone) != 0) {
        perror("shmdt");
        exit(1);
    }
}

int main(void)
{
    keep_in_segment();
    lose_with_segment();
    /* Only the segment keeps the block: the global points past its start. */
    attached = (void **)((uintptr_t)attached + 1);
    sample_forget();
    return 0;
}
