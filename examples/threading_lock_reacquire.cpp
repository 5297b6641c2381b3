// Twin of PyMOTW's threading_lock_reacquire.py: a Lock cannot be acquired twice, even by the
// same thread, so the second (non-blocking) try fails.
// Usage: threading_lock_reacquire [threads|processes]
#include <cstdio>

#include <procpool/procpool.hpp>

#include "sync_example_mode.hpp"

template <class mp>
int run() {
  typename mp::Lock lock;
  auto second = [&] { std::printf("Second try: %s\n", lock.acquire(false) ? "True" : "False"); };
  auto first = [&] {
    std::printf("First try: %s\n", lock.acquire() ? "True" : "False");
    second();
  };
  first();
  return 0;
}

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  return sync_examples::run_in_mode(argc, argv, [](auto mode) { return run<decltype(mode)>(); });
}
