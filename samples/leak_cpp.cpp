// leak_cpp.cpp — C++ leaks: a lost object made with `new` that owns a std::string and a
// std::vector (their buffers are indirectly lost), and a lost `new[]` array.
// Frames must be demangled: the allocation frame reads shop::make_widget(int).
//
// Expected (valgrind 3.19 agrees; x86_64, libstdc++ 12):
//   145 (64 direct, 81 indirect) bytes in 1 blocks definitely lost (operator new, make_widget)
//    41 bytes in 1 blocks indirectly lost (the 40-character name's buffer)
//    40 bytes in 1 blocks indirectly lost (the vector of 10 ints)
//    40 bytes in 1 blocks definitely lost (operator new[], make_scores)
//   in use at exit 185 bytes in 4 blocks (libstdc++'s emergency pool aside: valgrind frees it
//   at exit, other tools may see it as still reachable).
#include <cstring>
#include <string>
#include <vector>

#include "sample.h"

namespace shop {

struct Widget {
    std::string name;         // 32 bytes; heap buffer when longer than 15 characters
    std::vector<int> values;  // 24 bytes
    int id;
};                            // 64 bytes

__attribute__((noinline)) Widget *make_widget(int id)
{
    Widget *w = new Widget; /* expect: leak definite widget */
    w->name = std::string(40, 'w'); /* expect: indirect name */
    w->values.assign(10, id); /* expect: indirect values */
    w->id = id;
    return w;
}

__attribute__((noinline)) int *make_scores(int n)
{
    int *scores = new int[n]; /* expect: leak definite scores */
    for (int i = 0; i < n; i++)
        scores[i] = i;
    return scores;
}

}  // namespace shop

int main()
{
    shop::Widget *volatile w = shop::make_widget(7);
    w = nullptr;
    int *volatile scores = shop::make_scores(10);
    scores = nullptr;
    (void)w;
    (void)scores;

    sample_forget();
    return 0;
}
