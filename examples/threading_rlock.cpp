// Twin of PyMOTW's threading_rlock.py: an RLock may be re-acquired by its owner, so the
// second try succeeds.
// Usage: threading_rlock [threads|processes]
#include <cstdio>

#include <procpool/procpool.hpp>

#include "sync_example_mode.hpp"

template <class mp>
int run() {
  typename mp::RLock lock;
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
