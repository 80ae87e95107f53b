/* fuzz_xml.c — libFuzzer target for the valgrind-XML reader behind `memtrace compare`. */
#include <stdint.h>

#include "xml_read.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    struct xml_node *root = xml_parse((const char *)data, size, err, sizeof err);
    if (root)
        xml_free(root);
    return 0;
}
