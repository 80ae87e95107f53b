/* fuzz_suppressions.c — libFuzzer target for the suppression-file parser: any text either
 * parses or is refused with a message, never a crash, a leak or undefined behaviour. */
#include <stdint.h>
#include <stdio.h>

#include "suppress.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct supp_set *set = supp_set_new();
    if (!set)
        return 0;
    supp_parse(set, "fuzz.supp", (const char *)data, size);
    supp_set_free(set);
    return 0;
}
