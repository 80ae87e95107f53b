/* uaf_list.c — the classic use after free: a loop that frees a list node, then reads the
 * freed node's next pointer to go on. Three nodes from one call site, pushed to the front,
 * so the loop starts at the last one made.
 *
 * Expected (valgrind 3.19 agrees): InvalidRead of size 8 at "read next", 8 bytes inside
 * a block of size 16 free'd at "free node", alloc'd at "alloc node"; the sum printed is 3.
 * memtrace reports it where a guarded node is read (the first nodes of a call site are
 * guarded); the unguarded nodes keep what the program left in them, so the loop goes on
 * there as it does natively. */
#include <stdio.h>
#include <stdlib.h>

struct node {
    long value;
    struct node *next;
};

int main(void)
{
    struct node *head = NULL;
    for (long i = 0; i < 3; i++) {
        struct node *n = malloc(sizeof *n); /* expect: alloc node */
        n->value = i;
        n->next = head;
        head = n;
    }
    long sum = 0;
    struct node *n = head;
    while (n) {
        sum += n->value;
        free(n); /* expect: free node */
        n = n->next; /* expect: read next */
    }
    printf("sum %ld\n", sum);
    return 0;
}
