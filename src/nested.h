/* nested.h — memory for allocations made while memtrace itself runs on the thread: its
 * own dlopen at start-up, or a signal handler that interrupted memtrace, or glibc's malloc
 * underneath it. Such a call may find memtrace's locks, or glibc's arena lock, held by its
 * own thread, so it uses neither: each block is its own anonymous mapping (raw syscall),
 * remembered in a lock-free set so that free() and realloc() recognise it. Rare by design:
 * nothing the program calls directly comes here. Async-signal-safe. */
#ifndef MEMTRACE_NESTED_H
#define MEMTRACE_NESTED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Zero-filled, aligned to max(align, 16); NULL when mmap fails. */
void *nested_alloc(size_t size, size_t align);
/* Unmaps ptr and returns true when it came from nested_alloc; false otherwise. */
bool nested_free(void *ptr);
/* The size asked for ptr, when it came from nested_alloc; false otherwise. */
bool nested_size(const void *ptr, size_t *size);
/* Every live nested block, for the leak scan: libc may keep the program's pointers in one
 * (pthread_setspecific's second-level array, first needed while memtrace unwound). */
void nested_for_each(void (*fn)(uintptr_t block, size_t size, void *ctx), void *ctx);

#endif
