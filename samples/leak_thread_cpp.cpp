// leak_thread_cpp.cpp — a block lost inside a std::thread's function: its allocation stack
// runs through libstdc++'s std::__invoke templates.
//
// Expected (valgrind 3.19 agrees): 64 bytes in 2 blocks definitely lost, allocated in
// make_buffer() called from work() on two threads (one loss record).
#include <cstring>
#include <thread>

#include "sample.h"

__attribute__((noinline)) static char *make_buffer(int id)
{
    char *buffer = new char[32]; // expect: leak definite buffer
    std::memset(buffer, id, 32);
    return buffer;
}

__attribute__((noinline)) static void work(int id)
{
    char *volatile buffer = make_buffer(id);
    buffer = nullptr;
    (void)buffer;
    sample_forget();
}

int main()
{
    std::thread first(work, 1), second(work, 2);
    first.join();
    second.join();
    return 0;
}
