// Shared objects passed to procpool::Process as arguments, with every start method: a
// forked child uses the inherited mapping, a spawned or forkserver child attaches to it.
#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <mutex>
#include <ranges>
#include <string>
#include <vector>

#include <procpool/procpool.hpp>

#include "run_program.hpp"
#include "start_methods.hpp"

using namespace std::chrono_literals;
using procpool::Process;
using procpool::ProcessOptions;
using procpool::StartMethod;

namespace {

int exit_code_of(Process& p) {
  p.join();
  return p.exitcode().value_or(-999);
}

// Targets are plain functions so that spawn and forkserver can run them. A failed check in
// a child becomes its exit code.

void add_under_lock(procpool::Lock& lock, procpool::RawValue<long>& counter, int n) {
  for (int i = 0; i < n; ++i) {
    std::lock_guard g(lock);
    counter.get_obj() = counter.get_obj() + 1;
  }
}

void add_under_rlock(procpool::RLock& lock, procpool::Value<long>& v, int n) {
  for (int i = 0; i < n; ++i) {
    std::lock_guard g(lock);
    std::lock_guard again(lock);
    v.get_obj() += 1;
  }
}

// The multiprocessing docs' example: f(n, a) sets n.value and negates a.
void negate(procpool::Value<double>& num, procpool::Array<int>& arr, procpool::RawArray<int>& raw) {
  num.set(3.1415927);
  std::lock_guard g(arr.get_lock());
  for (auto& x : arr) x = -x;
  for (auto& x : raw) x *= 2;
}

void rendezvous(procpool::Event& go, procpool::Barrier& barrier, procpool::Semaphore& sem,
                procpool::BoundedSemaphore& bounded, procpool::Condition& cond, procpool::RawValue<int>& flag) {
  if (!go.wait(20s)) ::_exit(10);
  if (barrier.wait(20s) > 1) ::_exit(11);
  sem.release(2);
  if (!bounded.acquire(true, 20s)) ::_exit(12);
  bounded.release();
  std::lock_guard g(cond);
  flag.get_obj() = 1;
  cond.notify_all();
}

// Under the lock shared by both objects, the pair always sums to 100.
void move_units(procpool::RLock& lock, procpool::Value<long>& a, procpool::Array<long>& b, int n) {
  for (int i = 0; i < n; ++i) {
    std::lock_guard g(lock);
    if (a.value() + b.get(0) != 100) ::_exit(20);
    a.set(a.value() - 1);
    b.set(0, b.get(0) + 1);
    if (!a.get_lock().is_owned() || !b.get_lock().is_owned()) ::_exit(21);
  }
}

void die_holding(procpool::Lock& lock, procpool::RLock& rlock) {
  lock.acquire();
  rlock.acquire();
  ::raise(SIGKILL);
}

} // namespace

TEST_CASE_TEMPLATE("Sync.Process.LockCounter", M, ALL_START_METHODS) {
  procpool::Lock lock;
  procpool::RawValue<long> counter(0);
  Process a(testing::options<M>(), &add_under_lock, lock, counter, 5000);
  Process b(testing::options<M>(), &add_under_lock, std::ref(lock), std::ref(counter), 5000);
  a.start();
  b.start();
  add_under_lock(lock, counter, 5000);
  CHECK(exit_code_of(a) == 0);
  CHECK(exit_code_of(b) == 0);
  CHECK(counter.value() == 15000);
}

TEST_CASE_TEMPLATE("Sync.Process.RLockValue", M, ALL_START_METHODS) {
  procpool::RLock lock;
  procpool::Value<long> v(0);
  Process a(testing::options<M>(), &add_under_rlock, lock, v, 3000);
  a.start();
  add_under_rlock(lock, v, 3000);
  CHECK(exit_code_of(a) == 0);
  CHECK(v.value() == 6000);
}

TEST_CASE_TEMPLATE("Sync.Process.ValueAndArray", M, ALL_START_METHODS) {
  procpool::Value<double> num(0.0);
  procpool::Array<int> arr(std::views::iota(0, 10));
  procpool::RawArray<int> raw{1, 2, 3};
  Process p(testing::options<M>(), &negate, num, arr, raw);
  p.start();
  CHECK(exit_code_of(p) == 0);
  CHECK(num.value() == 3.1415927);
  CHECK(arr.to_vector() == std::vector<int>{0, -1, -2, -3, -4, -5, -6, -7, -8, -9});
  CHECK(raw.to_vector() == std::vector<int>{2, 4, 6});
}

TEST_CASE_TEMPLATE("Sync.Process.ValueAndArrayWithASharedLock", M, ALL_START_METHODS) {
  // The shared lock travels with each object: a spawned child attaches to the same lock.
  procpool::RLock lock;
  procpool::Value<long> a(100, lock);
  procpool::Array<long> b({0L}, lock);
  Process one(testing::options<M>(), &move_units, lock, a, b, 20);
  Process two(testing::options<M>(), &move_units, lock, a, b, 20);
  one.start();
  two.start();
  CHECK(exit_code_of(one) == 0);
  CHECK(exit_code_of(two) == 0);
  CHECK(a.value() == 60);
  CHECK(b.get(0) == 40);
}

TEST_CASE_TEMPLATE("Sync.Process.EventBarrierSemaphoreCondition", M, ALL_START_METHODS) {
  procpool::Event go;
  procpool::Barrier barrier(2);
  procpool::Semaphore sem(0);
  procpool::BoundedSemaphore bounded(1);
  procpool::Condition cond;
  procpool::RawValue<int> flag(0);
  bounded.acquire();
  Process p(testing::options<M>(), &rendezvous, go, barrier, sem, bounded, cond, flag);
  p.start();
  go.set();
  CHECK(barrier.wait(20s) <= 1);
  CHECK(sem.acquire(true, 20s));
  CHECK(sem.acquire(true, 20s));
  bounded.release();
  {
    std::unique_lock g(cond);
    CHECK(cond.wait_for([&] { return flag.get_obj() == 1; }, 20s));
  }
  CHECK(exit_code_of(p) == 0);
}

TEST_CASE_TEMPLATE("Sync.Process.KilledHolderReported", M, ALL_START_METHODS) {
  procpool::Lock lock;
  procpool::RLock rlock;
  Process p(testing::options<M>(), &die_holding, lock, rlock);
  p.start();
  CHECK(exit_code_of(p) == -SIGKILL);
  CHECK(lock.acquire(true, 10s));
  CHECK(lock.owner_died());
  lock.release();
  CHECK(rlock.acquire(true, 10s));
  CHECK(rlock.owner_died());
  rlock.release();
}

TEST_CASE("Sync.Process.NoDevShmLeftovers") {
  CHECK(testing::procpool_shm_entries().empty());
}
