/* overlap.c — the overlap error (see overlap.h). */
#include "overlap.h"

#include "eventlog.h"
#include "runtime.h"
#include "stacks.h"

void overlap_report(const char *function, const void *dst, const void *src, size_t size)
{
    if (!runtime_ensure_ready() || runtime_thread.busy)
        return;
    runtime_thread.busy = 1;
    struct error_event e = {
        .kind = ERROR_OVERLAP, .tid = runtime_tid(), .addr = (uintptr_t)dst,
        .stack = stacks_capture(runtime_options.num_callers), .alloc_kind = -1, .free_kind = -1,
        .function = function, .source = (uintptr_t)src, .has_requested = size != 0,
        .requested = size,
    };
    eventlog_error(&e);
    runtime_leave();
}
