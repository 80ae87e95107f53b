// clean_cpp.cpp — C++ containers and strings, all released by their destructors:
// no leaks, no errors.
// Expected (valgrind 3.19 agrees): in use at exit 0 bytes in 0 blocks; 0 errors.
// (libstdc++'s emergency exception pool is freed by valgrind at exit; a tool that does
// not free it may list it as still reachable, which is not an error.)
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

struct Order {
    std::string customer;
    std::vector<std::string> lines;
};

static int run()
{
    std::map<std::string, int> stock;
    for (int i = 0; i < 50; i++)
        stock["article-number-" + std::to_string(i)] = i;

    std::unordered_map<int, std::vector<int>> buckets;
    for (int i = 0; i < 100; i++)
        buckets[i % 7].push_back(i);

    std::vector<std::unique_ptr<Order>> orders;
    for (int i = 0; i < 20; i++) {
        auto o = std::make_unique<Order>();
        o->customer = "a customer whose name is long enough to live on the heap";
        o->lines.assign(3, std::string(32, 'x'));
        orders.push_back(std::move(o));
    }

    std::shared_ptr<std::string> shared = std::make_shared<std::string>(100, 's');
    std::shared_ptr<std::string> other = shared;

    int *array = new int[16];
    delete[] array;

    return static_cast<int>(stock.size() + buckets.size() + orders.size() + other->size());
}

int main()
{
    return run() == 50 + 7 + 20 + 100 ? 0 : 1;
}
