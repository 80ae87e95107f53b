/* exit_status.c — frees everything and exits with status 3: a wrapper must pass the
 * program's own status through when there is nothing to report.
 * Expected (valgrind 3.19 agrees): exit status 3; in use at exit 0 bytes; 0 errors. */
#include <stdlib.h>
#include <string.h>

int main(void)
{
    char *p = malloc(128);
    memset(p, 0, 128);
    free(p);
    return 3;
}
