/* leak_dead_frame.c — a block whose last pointers lie in the dead frame of a function that
 * returned: definitely lost, however many copies the dead frame holds.
 *
 *   leak_dead_frame [return|exit]
 *
 * fill_dead_frame() leaves 4 KiB of copies of the pointer below main's frame, where the
 * exit sequence's frames (exit, its handlers, the destructors) then run, so holes in them
 * keep copies; returning, main leaves copies in its own frame too. Unlike the other
 * samples, nothing scrubs the stack: memtrace must not count a dead frame as a root,
 * whether main returns or calls exit().
 *
 * Expected (valgrind 3.19 agrees): 48 bytes in 1 blocks definitely lost, allocated in
 * make_record(); in use at exit 48 bytes in 1 blocks; 0 indirect, 0 possible, 0 reachable. */
#include <stdlib.h>
#include <string.h>

#define COPIES 512

__attribute__((noinline)) static void *make_record(void)
{
    void *record = malloc(48); /* expect: leak definite record */
    memset(record, 'r', 48);
    return record;
}

__attribute__((noinline)) static void fill_dead_frame(void *pointer)
{
    void *volatile copies[COPIES];
    (void)copies;
    for (int i = 0; i < COPIES; i++)
        copies[i] = pointer;
}

int main(int argc, char **argv)
{
    void *volatile held[64];
    if (argc > 1 && strcmp(argv[1], "exit") == 0) {
        fill_dead_frame(make_record());
        exit(0);
    }
    void *record = make_record();
    fill_dead_frame(record);
    for (int i = 0; i < 64; i++)     /* main's own frame is dead too once it returns */
        held[i] = record;
    (void)held;
    return 0;
}
