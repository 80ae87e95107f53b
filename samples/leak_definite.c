/* leak_definite.c — blocks whose every pointer is gone: "definitely lost".
 *
 * Expected (valgrind 3.19 agrees):
 *   100 bytes in 1 blocks definitely lost, allocated in make_message()
 *    64 bytes in 4 blocks definitely lost, allocated in make_token() (one loss record:
 *       the four blocks share one allocation stack)
 *   in use at exit 164 bytes in 5 blocks; 0 indirect, 0 possible, 0 reachable. */
#include <stdlib.h>
#include <string.h>

#include "sample.h"

__attribute__((noinline)) static char *make_message(void)
{
    char *msg = malloc(100); /* expect: leak definite message */
    memset(msg, 'm', 100);
    return msg;
}

__attribute__((noinline)) static void *make_token(void)
{
    void *token = malloc(16); /* expect: leak definite token */
    memset(token, 0, 16);
    return token;
}

int main(void)
{
    char *volatile msg = make_message();
    msg[0] = 'M';
    msg = NULL;                         /* the only pointer is dropped */

    for (int i = 0; i < 4; i++) {
        void *volatile token = make_token();
        token = NULL;
        (void)token;
    }

    sample_forget();
    return 0;
}
