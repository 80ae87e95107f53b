/* interpose.h — what the thin entry points in interpose/ share: the attribute that
 * exports a symbol from libmemtrace.so (everything else is hidden). The entry points do
 * nothing but translate a libc or C++ ABI call into the runtime's own calls. */
#ifndef MEMTRACE_INTERPOSE_H
#define MEMTRACE_INTERPOSE_H

#define MEMTRACE_EXPORT __attribute__((visibility("default")))

#endif
