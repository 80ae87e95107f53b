/* fuzz_report.c — libFuzzer target for the reporter's way in: an arbitrary byte string as
 * an event log, read, symbolized and rendered to text and JSON. Any crash, leak or
 * undefined behaviour (ASan/UBSan) is a bug: a corrupted target must not break the report. */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    char path[64];
    struct report_options opts;

    if (fd < 0)
        fd = memfd_create("memtrace-fuzz-log", 0);
    if (fd < 0 || ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        return 0;
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    report_options_init(&opts);
    opts.text_path = "/dev/null";
    opts.json_path = "/dev/null";
    report_log(path, &opts, NULL);
    return 0;
}
