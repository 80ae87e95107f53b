/* thread_registry.c — live threads' stacks and ended threads' thread pointers (see
 * thread_registry.h). */
#include "thread_registry.h"

#define LIVE_SLOTS 4096
#define ENDED_SLOTS 1024

struct live_thread {
    pid_t tid;                       /* 0: a free slot */
    uintptr_t lo, hi;
};

static struct live_thread live[LIVE_SLOTS];
static struct ended_thread ended[ENDED_SLOTS];
static unsigned ended_next;

void thread_registry_started(pid_t tid, uintptr_t stack_lo, uintptr_t stack_hi)
{
    for (size_t i = 0; i < LIVE_SLOTS; i++) {
        pid_t free_slot = 0;
        if (__atomic_compare_exchange_n(&live[i].tid, &free_slot, tid, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED)) {
            __atomic_store_n(&live[i].lo, stack_lo, __ATOMIC_RELAXED);
            __atomic_store_n(&live[i].hi, stack_hi, __ATOMIC_RELEASE);
            return;
        }
    }
}

void thread_registry_ended(pid_t tid, uintptr_t tls_lo, uintptr_t tp, bool joinable)
{
    for (size_t i = 0; i < LIVE_SLOTS; i++) {
        if (__atomic_load_n(&live[i].tid, __ATOMIC_ACQUIRE) == tid) {
            __atomic_store_n(&live[i].hi, 0, __ATOMIC_RELAXED);
            __atomic_store_n(&live[i].tid, 0, __ATOMIC_RELEASE);
            break;
        }
    }
    if (!joinable)
        return;
    size_t slot = ENDED_SLOTS;
    for (size_t i = 0; i < ENDED_SLOTS && slot == ENDED_SLOTS; i++)
        if (__atomic_load_n(&ended[i].tp, __ATOMIC_RELAXED) == tp)
            slot = i;
    if (slot == ENDED_SLOTS)
        slot = __atomic_fetch_add(&ended_next, 1, __ATOMIC_RELAXED) % ENDED_SLOTS;
    __atomic_store_n(&ended[slot].tp, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&ended[slot].tls_lo, tls_lo, __ATOMIC_RELAXED);
    __atomic_store_n(&ended[slot].tp, tp, __ATOMIC_RELEASE);
}

void thread_registry_released(uintptr_t tp)
{
    for (size_t i = 0; i < ENDED_SLOTS; i++)
        if (__atomic_load_n(&ended[i].tp, __ATOMIC_RELAXED) == tp)
            __atomic_store_n(&ended[i].tp, 0, __ATOMIC_RELEASE);
}

bool thread_registry_stack(pid_t tid, uintptr_t *lo, uintptr_t *hi)
{
    for (size_t i = 0; i < LIVE_SLOTS; i++) {
        if (__atomic_load_n(&live[i].tid, __ATOMIC_ACQUIRE) == tid) {
            *hi = __atomic_load_n(&live[i].hi, __ATOMIC_ACQUIRE);
            *lo = __atomic_load_n(&live[i].lo, __ATOMIC_RELAXED);
            return *lo < *hi;
        }
    }
    return false;
}

size_t thread_registry_ended_threads(struct ended_thread *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < ENDED_SLOTS && n < cap; i++) {
        uintptr_t tp = __atomic_load_n(&ended[i].tp, __ATOMIC_ACQUIRE);
        uintptr_t tls_lo = __atomic_load_n(&ended[i].tls_lo, __ATOMIC_RELAXED);
        if (tp && tls_lo <= tp)
            out[n++] = (struct ended_thread){tls_lo, tp};
    }
    return n;
}
