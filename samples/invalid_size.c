/* invalid_size.c — allocation sizes that cannot be right: malloc((size_t)-5) (a negative
 * size converted to size_t) and two callocs whose count * size overflows size_t, one with
 * an argument that is itself "negative" and one with two harmless-looking arguments. Each
 * is a report and nothing else: the call still fails the way glibc fails it (NULL, errno
 * ENOMEM), the program prints what it got and ends with status 0.
 *
 * Expected:
 *   valgrind 3.19: FishyValue at "invalid-size malloc" ("Argument 'size' of function malloc
 *     has a fishy (possibly negative) value: -5"); it does NOT report either calloc (its
 *     calloc returns NULL silently on overflow, without setting errno, so the calloc lines
 *     print "errno=other" under valgrind). ERROR SUMMARY: 1 errors from 1 contexts.
 *   memtrace: invalid-size at all three marked lines, in valgrind's words for the first two
 *     (the second: "Argument 'size' of function calloc ... -9223372036854775808"), and
 *     "Argument 'nmemb*size' of function calloc overflows: 8589934592 * 8589934592".
 *   Nothing is allocated: All heap blocks were freed. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Sizes go through volatiles so the compiler neither warns about nor folds the calls. */
static volatile size_t g_minus_five = (size_t)-5;
static volatile size_t g_two = 2;
static volatile size_t g_half_plus_one = SIZE_MAX / 2 + 1;
static volatile size_t g_two_pow_33 = (size_t)1 << 33;

static void show(const char *what, void *p)
{
    printf("%s: %s errno=%s\n", what, p ? "not NULL" : "NULL",
           p ? "-" : errno == ENOMEM ? "ENOMEM" : "other");
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);   /* no stdio buffer on the heap */
    errno = 0;
    void *volatile a = malloc(g_minus_five); /* expect: invalid-size malloc */
    show("malloc(-5)", a);
    errno = 0;
    void *volatile b = calloc(g_two, g_half_plus_one); /* expect: invalid-size calloc negative */
    show("calloc(2, SIZE_MAX/2+1)", b);
    errno = 0;
    void *volatile c = calloc(g_two_pow_33, g_two_pow_33); /* expect: invalid-size calloc overflow */
    show("calloc(2^33, 2^33)", c);
    free(a);
    free(b);
    free(c);
    puts("invalid_size: end");
    return 0;
}
