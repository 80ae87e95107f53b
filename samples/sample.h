/* sample.h — helpers shared by the samples so that a lost pointer is really lost.
 *
 * A leak checker (valgrind or memtrace) scans registers and stacks conservatively: a stale
 * copy of a pointer left in a dead stack slot or a caller-saved register turns a "definitely
 * lost" block into a "still reachable" one. valgrind's own tests (memcheck/tests/leak.h)
 * clear registers for the same reason. Samples allocate in noinline helpers, drop the
 * pointer, then call sample_forget() before exiting. Header only: not a sample itself. */
#ifndef MEMTRACE_SAMPLE_H
#define MEMTRACE_SAMPLE_H

#include <string.h>

/* Overwrites the stack below the caller with zeros, where the dead frames of the helpers
 * that returned leaked pointers were. */
__attribute__((noinline, unused)) static void sample_scrub_stack(void)
{
    volatile char junk[16384];
    memset((char *)junk, 0, sizeof junk);
}

#if defined(__x86_64__)
/* Zeroes the caller-saved registers (the callee-saved ones are restored by every caller). */
#define SAMPLE_CLEAR_REGS()                                                       \
    __asm__ __volatile__("xorl %%eax, %%eax\n\txorl %%ecx, %%ecx\n\t"             \
                         "xorl %%edx, %%edx\n\txorl %%esi, %%esi\n\t"             \
                         "xorl %%edi, %%edi\n\txorl %%r8d, %%r8d\n\t"             \
                         "xorl %%r9d, %%r9d\n\txorl %%r10d, %%r10d\n\t"           \
                         "xorl %%r11d, %%r11d"                                    \
                         ::: "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", \
                             "r11", "memory")
#else
#define SAMPLE_CLEAR_REGS() __asm__ __volatile__("" ::: "memory")
#endif

/* Call after the last pointer to a leaked block was dropped. */
#define sample_forget()        \
    do {                       \
        sample_scrub_stack();  \
        SAMPLE_CLEAR_REGS();   \
    } while (0)

#endif
