/* exec_child.c — runs another program as a child process (fork, then execv of argv[1] with
 * the remaining arguments) and exits with the child's status. Leaks nothing itself: with
 * --trace-children=yes the exec'd program gets a report of its own, with no it does not.
 * Expected (valgrind 3.19 agrees): this process has 0 bytes in use at exit, 0 errors. */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    pid_t child = fork();
    if (child < 0)
        return 1;
    if (child == 0) {
        execv(argv[1], argv + 1);
        _exit(127);
    }
    int status = 0;
    if (waitpid(child, &status, 0) != child)
        return 1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
