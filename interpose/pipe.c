/* pipe.c — pipe2 and pipe, for the pipe libunwind opens while memtrace unwinds (it checks
 * that a stack word is readable by writing it there). Left on the lowest free descriptors,
 * a daemon's close of every descriptor takes it away; libunwind then closes those numbers
 * again, now the program's own files, and reopens its pipe over them. Opened inside
 * memtrace, the pipe moves to high descriptors instead. The program's own pipes are
 * untouched. */
#include <sys/syscall.h>
#include <unistd.h>

#include "interpose.h"
#include "os.h"
#include "runtime.h"

MEMTRACE_EXPORT int pipe2(int fds[2], int flags)
{
    if (syscall(SYS_pipe2, fds, flags) != 0)
        return -1;
    if (runtime_thread.busy) {
        fds[0] = os_move_fd_high(fds[0]);
        fds[1] = os_move_fd_high(fds[1]);
    }
    return 0;
}

MEMTRACE_EXPORT int pipe(int fds[2])
{
    return pipe2(fds, 0);
}
