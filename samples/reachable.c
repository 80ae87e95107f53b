/* reachable.c — memory still pointed to from a global at exit: "still reachable".
 * Not an error (valgrind counts it in the LEAK SUMMARY but not in the ERROR SUMMARY): a
 * clean control for the leak classes.
 * Expected (valgrind 3.19 agrees):
 *   48 bytes in 1 blocks still reachable (g_config)
 *  200 bytes in 1 blocks still reachable (g_config->table, reachable through g_config)
 *   0 definite, 0 indirect, 0 possible; 0 errors. */
#include <stdlib.h>
#include <string.h>

#include "sample.h"

struct config {
    char *table;
    char label[40];
};                                      /* 48 bytes */

static struct config *g_config;

__attribute__((noinline)) static void load_config(void)
{
    g_config = malloc(sizeof *g_config); /* expect: reachable config */
    memset(g_config->label, 0, sizeof g_config->label);
    g_config->table = malloc(200); /* expect: reachable table */
    memset(g_config->table, 1, 200);
}

int main(void)
{
    load_config();
    sample_forget();
    return 0;
}
