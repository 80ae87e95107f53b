/* clean.c — everything allocated is freed: no leaks, no errors.
 * Uses malloc, calloc, realloc, strdup-by-hand and posix_memalign, frees all of it.
 * Expected (valgrind 3.19 agrees): in use at exit 0 bytes in 0 blocks; 0 errors. */
#include <stdlib.h>
#include <string.h>

struct node {
    struct node *next;
    int value;
};

int main(void)
{
    struct node *head = NULL;
    for (int i = 0; i < 10; i++) {
        struct node *n = malloc(sizeof *n);
        n->value = i;
        n->next = head;
        head = n;
    }
    while (head) {
        struct node *next = head->next;
        free(head);
        head = next;
    }

    int *v = calloc(8, sizeof *v);
    v = realloc(v, 64 * sizeof *v);
    v[63] = 1;
    free(v);

    void *aligned = NULL;
    if (posix_memalign(&aligned, 64, 256) == 0)
        free(aligned);

    char *copy = malloc(6);
    memcpy(copy, "hello", 6);
    free(copy);
    return 0;
}
