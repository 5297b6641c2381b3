// Twin of PyMOTW's threading_lock_with.py: a scoped guard (Python's `with lock:`) and an
// explicit acquire/release manage the lock the same way.
// Usage: threading_lock_with [threads|processes|fork|spawn|forkserver]
#include <functional>
#include <mutex>

#include <procpool/procpool.hpp>

#include "sync_example_mode.hpp"

using sync_examples::say;

template <class mp>
void worker_with(typename mp::Lock& lock) {
  std::lock_guard guard(lock);
  say("Lock acquired via with");
}

template <class mp>
void worker_no_with(typename mp::Lock& lock) {
  lock.acquire();
  try {
    say("Lock acquired directly");
  } catch (...) {
    lock.release();
    throw;
  }
  lock.release();
}

template <class mp>
int run() {
  typename mp::Lock lock;
  typename mp::Process w(&worker_with<mp>, std::ref(lock));
  typename mp::Process nw(&worker_no_with<mp>, std::ref(lock));
  w.start();
  nw.start();
  w.join();
  nw.join();
  return 0;
}

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  return sync_examples::run_in_mode(argc, argv, [](auto mode) { return run<decltype(mode)>(); });
}
