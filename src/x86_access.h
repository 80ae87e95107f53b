/* x86_access.h — the memory operand of an x86-64 instruction: its size, and where it
 * starts given the thread's registers. A small decoder for the instructions that touch
 * heap memory (moves, arithmetic, string ops, SSE/AVX/AVX-512 moves and compares), so that
 * a fault on a guard page is reported as valgrind reports the access: its size, and its
 * first byte (an 8-byte store that starts 5 bytes before a guard page faults on the
 * page's first byte). */
#ifndef MEMTRACE_X86_ACCESS_H
#define MEMTRACE_X86_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ucontext.h>

struct x86_access {
    size_t size;          /* bytes; 0 when the instruction is not recognised */
    bool has_address;     /* address is known: a ModRM memory operand, no segment override */
    uintptr_t address;
};

/* regs: the thread's general registers as a signal context holds them (gregs), or NULL
 * for the size alone. */
void x86_access_decode(const void *pc, const greg_t *regs, struct x86_access *out);

#endif
