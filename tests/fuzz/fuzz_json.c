/* fuzz_json.c — libFuzzer target for the JSON reader behind --baseline. */
#include <stdint.h>

#include "json_read.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    struct json *value = json_parse((const char *)data, size, err, sizeof err);
    if (value)
        json_free(value);
    return 0;
}
