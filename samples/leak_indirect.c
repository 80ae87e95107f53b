/* leak_indirect.c — a lost list head that owns other blocks.
 *
 * The head (struct list, 16 bytes) loses its last pointer: definitely lost. Its three
 * items (struct item, 32 bytes each, chained) and its name (10 bytes) are reachable only
 * through the head: indirectly lost.
 * Expected (valgrind 3.19 agrees):
 *   122 (16 direct, 106 indirect) bytes in 1 blocks definitely lost (new_list)
 *    96 bytes in 3 blocks indirectly lost (new_item: one record, same stack)
 *    10 bytes in 1 blocks indirectly lost (list name)
 *   in use at exit 122 bytes in 5 blocks. */
#include <stdlib.h>
#include <string.h>

#include "sample.h"

struct item {
    struct item *next;
    char payload[24];
};                                      /* 32 bytes */

struct list {
    struct item *first;
    char *name;
};                                      /* 16 bytes */

__attribute__((noinline)) static struct item *new_item(struct item *next, int tag)
{
    struct item *it = malloc(sizeof *it); /* expect: leak indirect item */
    it->next = next;
    memset(it->payload, 'a' + tag, sizeof it->payload);
    return it;
}

__attribute__((noinline)) static struct list *new_list(void)
{
    struct list *l = malloc(sizeof *l); /* expect: leak definite list */
    l->first = NULL;
    l->name = malloc(10); /* expect: leak indirect name */
    memcpy(l->name, "groceries", 10);
    for (int i = 0; i < 3; i++)
        l->first = new_item(l->first, i);
    return l;
}

int main(void)
{
    struct list *volatile l = new_list();
    l = NULL;                           /* head lost; everything it owned goes with it */
    (void)l;

    sample_forget();
    return 0;
}
