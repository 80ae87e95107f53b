/* guard.h — the guarded pool (GWP-ASan / KFENCE style): one PROT_NONE reservation made at
 * start, cut into slots of data pages with a guard page on either side:
 *     [guard][slot 0][guard][slot 1][guard] ... [slot n-1][guard]
 * Only the pages under a live block are accessible, so touching a byte past either end of
 * the block, or the block after its free, faults at the instruction (src/fault.c reports
 * it). The bytes between the block and its page edges hold a canary, checked at free and
 * on demand. Freed slots wait in a FIFO quarantine and the oldest is reused first.
 * Pages come from raw syscalls (os_mmap/os_mprotect), metadata from the runtime pool:
 * never libc malloc, never stdio. Live slots are capped so that their mappings (2 each)
 * stay under a quarter of vm.max_map_count: the program's own mmaps must keep working.
 * Thread-safe behind one spinlock, held only for bookkeeping (the mprotects run outside
 * it). guard_owns and guard_describe take no lock: they are async-signal-safe. */
#ifndef MEMTRACE_GUARD_H
#define MEMTRACE_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pool.h"

/* Which end of its slot a block is pushed against, i.e. which bug faults at once. */
enum guard_side {
    GUARD_SIDE_OVERFLOW,   /* block ends at the guard after it (the default) */
    GUARD_SIDE_UNDERFLOW,  /* block starts at the guard before it */
};

enum guard_block_state { GUARD_BLOCK_NONE, GUARD_BLOCK_LIVE, GUARD_BLOCK_FREED };

/* What an address near a guarded block means. */
enum guard_access {
    GUARD_ACCESS_UNKNOWN,        /* no block nearby explains it */
    GUARD_ACCESS_OVERFLOW,       /* at or past the block's end: slack, guard page or beyond */
    GUARD_ACCESS_UNDERFLOW,      /* before the block's start */
    GUARD_ACCESS_USE_AFTER_FREE, /* inside a freed block */
};

struct guard_info {
    size_t slot;
    enum guard_block_state state;     /* NONE: the fields below are meaningless */
    uintptr_t block;                  /* start handed to the program */
    size_t size;                      /* as requested */
    uint32_t alloc_stack, free_stack; /* free_stack 0 while live */
    int alloc_kind, free_kind;        /* enum alloc_kind, or -1 */
    pid_t alloc_tid, free_tid;
    enum guard_access access;         /* from guard_describe, and for a corrupt canary */
    uintptr_t bad_addr;               /* corrupt canary: the overwritten byte nearest the block */
};

enum guard_free_result {
    GUARD_FREE_OK,                /* released into the quarantine */
    GUARD_FREE_CANARY_CORRUPT,    /* released too, but bytes beside the block were
                                   * overwritten: report info.access at info.bad_addr */
    GUARD_FREE_NOT_A_BLOCK_START, /* in the pool but not a live block's start: nothing changed */
    GUARD_FREE_DOUBLE_FREE,       /* start of a block already freed: nothing changed */
};

static inline bool guard_free_released(enum guard_free_result r)
{
    return r == GUARD_FREE_OK || r == GUARD_FREE_CANARY_CORRUPT;
}

struct guard_stats {
    uint64_t allocs, frees;
    uint64_t live, live_limit;
    uint64_t refused_budget;   /* live_limit reached, or mprotect refused (map count) */
    uint64_t refused_no_slot;  /* every slot live or retired */
    uint64_t retired;          /* slots given up by fault_set_continue */
};

/* Reserves slot_count slots of max_block_size bytes (rounded up to pages). Reads
 * vm.max_map_count once. Calling it again drops the previous pool (tests only). */
bool guard_init(struct pool *pool, size_t slot_count, size_t max_block_size);
/* Where the slots lie: slot i's data pages start at first + i * stride. */
void guard_layout(uintptr_t *first, size_t *stride, size_t *count);
/* Placement of later allocations. always_align16 trades the exact guard for malloc's
 * 16-byte alignment: up to 15 bytes of slack, caught by the canary at free. */
void guard_set_placement(enum guard_side side, bool always_align16);
/* Lowers (or raises, up to the slot count) the cap on live guarded blocks. */
void guard_set_live_limit(size_t limit);

/* A zero-filled block, or NULL when size > max_block_size, align > page size, no slot
 * is free or the budget is spent: the caller then makes an ordinary block. */
void *guard_alloc(size_t size, size_t align, uint32_t alloc_stack, int alloc_kind, pid_t tid);
/* Fills *info in every case where a block is known (double free: both stacks). */
enum guard_free_result guard_free(void *ptr, int free_kind, uint32_t free_stack, pid_t tid,
                                  struct guard_info *info);

/* Is addr inside the reservation? Lock-free. */
bool guard_owns(uintptr_t addr);
/* Does [lo, hi) reach into it? Lock-free. */
bool guard_overlaps(uintptr_t lo, uintptr_t hi);
/* For a faulting address: the nearest block and what the access means. False only when
 * addr is not in the pool. No lock waited on: async-signal-safe. */
bool guard_describe(uintptr_t addr, struct guard_info *info);
/* Is ptr the start of a live guarded block? */
bool guard_find(const void *ptr, struct guard_info *info);
/* The requested size of a live block starting at ptr, else 0. */
size_t guard_usable_size(const void *ptr);
/* False when ptr is a live block whose canary was overwritten (info says where). */
bool guard_check(const void *ptr, struct guard_info *info);
/* Every live block; takes no lock: only while the world is stopped. */
void guard_for_each_live(void (*fn)(const struct guard_info *info, void *ctx), void *ctx);

/* For the fault handler (async-signal-safe). True the first time only, per slot. */
bool guard_claim_report(size_t slot);
/* Keeps a freed block's pages (and the pattern written into them) instead of giving them
 * back to the kernel: for --free-fill. */
void guard_set_keep_freed_pages(bool keep);
/* --continue-after-fault: makes the page holding addr accessible for good and retires
 * the slots next to it, which are then never reused. */
bool guard_open_page(uintptr_t addr);

void guard_get_stats(struct guard_stats *out);
/* Time spent so far opening and closing blocks' pages (the syscalls, the TLB flushes they
 * wait for on other cores, the first touch of a fresh page). Lock-free. */
uint64_t guard_cost_ns(void);

/* For fork: held across it, and reset in the child. */
void guard_lock(void);
void guard_unlock(void);
void guard_reset_lock(void);

#endif
