/* thread.c — pthread_join and its kin, and pthread_detach: once a thread is joined or
 * detached, glibc may reuse or free what it kept of the thread, and its TLS no longer
 * holds anything for the leak scan (src/thread_registry.h). The calls are glibc's own. */
#include <pthread.h>
#include <time.h>

#include "interpose.h"
#include "thread_registry.h"

static int released_when_done(int rc, pthread_t thread)
{
    if (rc == 0)
        thread_registry_released((uintptr_t)thread);
    return rc;
}

MEMTRACE_EXPORT int pthread_join(pthread_t thread, void **result)
{
    static int (*join)(pthread_t, void **);
    if (!join)
        join = (int (*)(pthread_t, void **))interpose_next("pthread_join");
    return released_when_done(join(thread, result), thread);
}

MEMTRACE_EXPORT int pthread_tryjoin_np(pthread_t thread, void **result)
{
    static int (*join)(pthread_t, void **);
    if (!join)
        join = (int (*)(pthread_t, void **))interpose_next("pthread_tryjoin_np");
    return released_when_done(join(thread, result), thread);
}

MEMTRACE_EXPORT int pthread_timedjoin_np(pthread_t thread, void **result,
                                         const struct timespec *deadline)
{
    static int (*join)(pthread_t, void **, const struct timespec *);
    if (!join)
        join = (int (*)(pthread_t, void **, const struct timespec *))
            interpose_next("pthread_timedjoin_np");
    return released_when_done(join(thread, result, deadline), thread);
}

MEMTRACE_EXPORT int pthread_clockjoin_np(pthread_t thread, void **result, clockid_t clock,
                                         const struct timespec *deadline)
{
    static int (*join)(pthread_t, void **, clockid_t, const struct timespec *);
    if (!join)
        join = (int (*)(pthread_t, void **, clockid_t, const struct timespec *))
            interpose_next("pthread_clockjoin_np");
    return released_when_done(join(thread, result, clock, deadline), thread);
}

MEMTRACE_EXPORT int pthread_detach(pthread_t thread)
{
    static int (*detach)(pthread_t);
    if (!detach)
        detach = (int (*)(pthread_t))interpose_next("pthread_detach");
    return released_when_done(detach(thread), thread);
}
