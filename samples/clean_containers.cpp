// clean_containers.cpp — C++ standard library containers and owners used correctly, to be
// reported with ZERO errors: vector growth by push_back (every reallocation moves the
// elements), reserve/shrink_to_fit, map and unordered_map of strings, long and short
// strings built by concatenation, unique_ptr (single and array), shared_ptr/weak_ptr and
// make_shared, an exception thrown and caught, and two std::threads that build their own
// containers and hand results back through a mutex-protected vector.
// Prints "clean_containers: ok" and ends with status 0 (status 1 on a wrong result).
//
// Expected (valgrind 3.19 agrees): ERROR SUMMARY: 0 errors; no definitely, indirectly or
// possibly lost bytes (libstdc++'s emergency pool and glibc's thread blocks may be reachable).
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

static int g_failed;

static void fail(const char *what)
{
    std::printf("FAILED: %s\n", what);
    g_failed = 1;
}

struct Node {
    std::string name;
    std::vector<int> values;
    std::weak_ptr<Node> parent;
    std::vector<std::shared_ptr<Node>> children;
};

static void vectors()
{
    std::vector<long> v;
    for (long i = 0; i < 100000; i++)
        v.push_back(i * 3);
    long sum = 0;
    for (long x : v)
        sum += x;
    if (sum != 3L * 100000 * 99999 / 2)
        fail("vector sum");
    v.resize(10);
    v.shrink_to_fit();
    std::vector<std::string> words;
    words.reserve(4);
    for (int i = 0; i < 1000; i++)
        words.emplace_back(std::string(static_cast<size_t>(i % 40), 'w') + std::to_string(i));
    if (words[999].size() != 39 + 3)
        fail("vector of strings");
}

static void maps()
{
    std::map<std::string, int> ordered;
    std::unordered_map<std::string, std::vector<int>> hashed;
    for (int i = 0; i < 2000; i++) {
        std::string key = "key-" + std::to_string(i) + std::string(static_cast<size_t>(i % 50), 'k');
        ordered[key] = i;
        hashed[key].push_back(i);
    }
    for (int i = 0; i < 2000; i += 2)
        ordered.erase("key-" + std::to_string(i) + std::string(static_cast<size_t>(i % 50), 'k'));
    if (ordered.size() != 1000 || hashed.size() != 2000)
        fail("map sizes");
    hashed.clear();
}

static void strings()
{
    std::string s = "x";
    for (int i = 0; i < 15; i++)
        s += s;                          // 32 KiB: grows far past the small-string buffer
    std::string small = "short";
    small += "!";
    if (s.size() != 32768 || small != "short!")
        fail("strings");
    s.erase(100);
    s.shrink_to_fit();
}

static void owners()
{
    auto one = std::make_unique<Node>();
    one->name = std::string(100, 'n');
    std::unique_ptr<int[]> array(new int[257]());
    array[256] = 1;
    auto root = std::make_shared<Node>();
    for (int i = 0; i < 50; i++) {
        auto child = std::shared_ptr<Node>(new Node);
        child->parent = root;                  // weak: no cycle
        child->values.assign(static_cast<size_t>(i), i);
        root->children.push_back(child);
    }
    std::weak_ptr<Node> watch = root->children[7];
    root.reset();
    if (!watch.expired())
        fail("shared_ptr tree not released");
}

static void exceptions()
{
    try {
        throw std::runtime_error(std::string(200, 'e'));
    } catch (const std::exception &e) {
        if (std::string(e.what()).size() != 200)
            fail("exception message");
    }
}

static void threads()
{
    std::mutex lock;
    std::vector<std::unique_ptr<std::string>> results;
    auto work = [&](int id) {
        std::vector<std::string> mine;
        for (int i = 0; i < 500; i++)
            mine.push_back(std::to_string(id) + ":" + std::string(static_cast<size_t>(i % 30), 't'));
        std::lock_guard<std::mutex> hold(lock);
        results.push_back(std::make_unique<std::string>(mine.back()));
    };
    std::thread a(work, 1), b(work, 2);
    a.join();
    b.join();
    if (results.size() != 2)
        fail("thread results");
}

int main()
{
    vectors();
    maps();
    strings();
    owners();
    exceptions();
    threads();
    std::puts(g_failed ? "clean_containers: FAILED" : "clean_containers: ok");
    return g_failed;
}
