// Twin of the multiprocessing docs' Lock example: ten workers print under one Lock so that
// their lines never mix.
//   def f(l, i): l.acquire(); try: print('hello world', i) finally: l.release()
// Usage: process_lock [threads|processes|fork|spawn|forkserver]
#include <cstdio>
#include <functional>
#include <memory>
#include <vector>

#include <procpool/procpool.hpp>

#include "sync_example_mode.hpp"

template <class mp>
void f(typename mp::Lock& l, int i) {
  l.acquire();
  try {
    std::printf("hello world %d\n", i);
    std::fflush(stdout);
  } catch (...) {
    l.release();
    throw;
  }
  l.release();
}

template <class mp>
int run() {
  typename mp::Lock lock;
  std::vector<std::unique_ptr<typename mp::Process>> workers;
  for (int num = 0; num < 10; ++num) {
    workers.push_back(std::make_unique<typename mp::Process>(&f<mp>, std::ref(lock), num));
    workers.back()->start();
  }
  for (auto& w : workers) w->join();
  return 0;
}

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  return sync_examples::run_in_mode(argc, argv, [](auto mode) { return run<decltype(mode)>(); });
}
