// Twin of the seed's Pool demo (Python's multiprocessing docs): map, imap_unordered,
// apply_async with get(timeout), worker pids, and a TimeoutError for a task that sleeps 10 s.
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <procpool/procpool.hpp>

namespace {
int f(int x) { return x * x; }
int getpid_task() { return static_cast<int>(::getpid()); }
void sleep_seconds(int s) { std::this_thread::sleep_for(std::chrono::seconds(s)); }

template <class T>
std::string list(const std::vector<T>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
  return out + "]";
}
} // namespace

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  procpool::init(argc, argv);
  {
    procpool::Pool pool(4);  // start 4 worker processes

    // prints "[0, 1, 4,..., 81]"
    std::printf("%s\n", list(pool.map(&f, std::views::iota(0, 10))).c_str());

    // prints the same numbers in arbitrary order
    for (int i : pool.imap_unordered(&f, std::views::iota(0, 10))) std::printf("%d\n", i);

    // evaluates f(20) asynchronously, in only one process
    auto res = pool.apply_async(&f, 20);
    std::printf("%d\n", res.get(1s));  // prints "400"

    // evaluates getpid() asynchronously
    auto pid = pool.apply_async(&getpid_task);
    std::printf("%d\n", pid.get(1s));  // prints the pid of that worker

    // launching multiple evaluations asynchronously *may* use more processes
    std::vector<procpool::AsyncResult<int>> multiple;
    for (int i = 0; i < 4; ++i) multiple.push_back(pool.apply_async(&getpid_task));
    std::vector<int> pids;
    for (auto& r : multiple) pids.push_back(r.get(1s));
    std::printf("%s\n", list(pids).c_str());

    // makes a single worker sleep for 10 s
    auto sleeper = pool.apply_async(&sleep_seconds, 10);
    try {
      sleeper.get(1s);
    } catch (const procpool::TimeoutError&) {
      std::printf("We lacked patience and got a procpool::TimeoutError\n");
    }
    std::printf("For the moment, the pool remains available for more work\n");
    std::fflush(stdout);
  }  // leaving the block terminates the pool, like Python's `with Pool() as pool:`
  std::printf("Now the pool is closed and no longer available\n");
  return 0;
}
