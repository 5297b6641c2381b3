// Lock and RLock on both backends: exclusion, try-acquire, timeouts, std guards, owner
// checks. Robustness (dead owners) is in sync_robust_test.cpp.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include <procpool/sync.hpp>

#include "sync_test_support.hpp"

using namespace std::chrono_literals;
using procpool::Processes;
using procpool::Threads;

TEST_CASE_TEMPLATE("Sync.Lock.MutualExclusion", B, Processes, Threads) {
  // N workers x M increments of a plain (non-atomic, unlocked) shared int under the Lock.
  constexpr int kWorkers = 4;
  constexpr int kIncrements = 20000;
  typename B::Lock lock;
  typename B::template RawValue<long> counter(0);
  const int failures = synctest::run_workers<B>(kWorkers, [&](int) {
    for (int i = 0; i < kIncrements; ++i) {
      lock.acquire();
      long& c = counter.get_obj();
      c = c + 1;
      lock.release();
    }
    return true;
  });
  CHECK(failures == 0);
  CHECK(counter.value() == long{kWorkers} * kIncrements);
  CHECK_FALSE(lock.locked());
}

TEST_CASE_TEMPLATE("Sync.Lock.StdGuards", B, Processes, Threads) {
  typename B::Lock a;
  typename B::Lock b;
  typename B::template RawValue<long> counter(0);
  const int failures = synctest::run_workers<B>(3, [&](int w) {
    for (int i = 0; i < 5000; ++i) {
      if (i % 3 == 0) {
        std::lock_guard g(a);
        ++counter.get_obj();
      } else if (i % 3 == 1) {
        std::unique_lock g(a, std::defer_lock);
        if (!g.try_lock_for(5s)) return false;
        ++counter.get_obj();
      } else {
        // Opposite orders in different workers: scoped_lock must avoid the deadlock.
        if (w % 2 == 0) {
          std::scoped_lock g(a, b);
          ++counter.get_obj();
        } else {
          std::scoped_lock g(b, a);
          ++counter.get_obj();
        }
      }
    }
    return true;
  });
  CHECK(failures == 0);
  CHECK(counter.value() == 15000);
}

TEST_CASE_TEMPLATE("Sync.Lock.TryAcquire", B, Processes, Threads) {
  typename B::Lock lock;
  CHECK(lock.acquire(false));
  CHECK(lock.locked());
  CHECK_FALSE(lock.acquire(false));  // not re-entrant, even for the same thread
  CHECK_FALSE(lock.try_lock());
  // Another worker sees it taken too, and can take it once released.
  synctest::Worker<B> other([&] { return !lock.acquire(false); });
  CHECK(other.join());
  lock.release();
  synctest::Worker<B> taker([&] {
    if (!lock.acquire(false)) return false;
    lock.release();
    return true;
  });
  CHECK(taker.join());
  CHECK_FALSE(lock.locked());
}

TEST_CASE_TEMPLATE("Sync.Lock.Timeout", B, Processes, Threads) {
  typename B::Lock lock;
  typename B::Event held;
  typename B::Event done;
  synctest::Worker<B> holder([&] {
    lock.acquire();
    held.set();
    done.wait(10s);
    lock.release();
    return true;
  });
  REQUIRE(held.wait(10s));
  const auto t0 = synctest::Clock::now();
  CHECK_FALSE(lock.acquire(true, 200ms));
  const double waited = synctest::seconds_since(t0);
  CHECK(waited >= 0.19);
  CHECK(waited < 3.0);
  // A zero timeout is a single attempt.
  CHECK_FALSE(lock.acquire(true, 0s));
  done.set();
  CHECK(lock.acquire(true, 10s));
  lock.release();
  CHECK(holder.join());
}

TEST_CASE_TEMPLATE("Sync.Lock.Errors", B, Processes, Threads) {
  typename B::Lock lock;
  // As Python: multiprocessing.Lock raises ValueError, threading.Lock RuntimeError.
  if constexpr (B::interprocess) CHECK_THROWS_AS(lock.release(), procpool::ValueError);
  else CHECK_THROWS_AS(lock.release(), procpool::StateError);
  CHECK_THROWS_AS(lock.acquire(true, -1s), procpool::ValueError);
  CHECK_FALSE(lock.locked());
}

TEST_CASE_TEMPLATE("Sync.Lock.ExtremeTimeoutsSaturate", B, Processes, Threads) {
  // Timeouts and deadlines at the ends of their types mean "forever" or "now", without
  // overflowing (UBSan) into the opposite.
  typename B::Lock lock;
  CHECK(lock.acquire(true, std::chrono::hours::max()));
  CHECK_FALSE(lock.try_lock_until(std::chrono::steady_clock::time_point::min()));
  lock.release();
  CHECK(lock.try_lock_until(std::chrono::steady_clock::time_point::min()));
  lock.release();
  CHECK(lock.try_lock_for(std::chrono::hours::max()));
  lock.release();
  typename B::Semaphore sem(1);
  CHECK(sem.acquire(true, std::chrono::duration<double>(1e300)));
}

TEST_CASE_TEMPLATE("Sync.Lock.ReleasedByAnotherWorker", B, Processes, Threads) {
  // Python's Lock is not owned: any thread or process may release it.
  typename B::Lock lock;
  lock.acquire();
  synctest::Worker<B> releaser([&] {
    lock.release();
    return true;
  });
  CHECK(releaser.join());
  CHECK_FALSE(lock.locked());
  CHECK(lock.acquire(false));
  CHECK_FALSE(lock.owner_died());
  lock.release();
}

TEST_CASE_TEMPLATE("Sync.Lock.HandOffWakesSleeper", B, Processes, Threads) {
  // A waiter that went to sleep on the futex is woken by release, long before its timeout.
  typename B::Lock lock;
  typename B::Event started;
  lock.acquire();
  synctest::Worker<B> waiter([&] {
    started.set();
    const auto t0 = synctest::Clock::now();
    if (!lock.acquire(true, 20s)) return false;
    lock.release();
    return synctest::seconds_since(t0) < 10.0;
  });
  REQUIRE(started.wait(10s));
  std::this_thread::sleep_for(100ms);  // let it spin out and sleep
  lock.release();
  CHECK(waiter.join());
}

TEST_CASE_TEMPLATE("Sync.RLock.Recursion", B, Processes, Threads) {
  typename B::RLock lock;
  CHECK(lock.acquire());
  CHECK(lock.acquire(false));  // re-entrant (threading_rlock's "Second try")
  CHECK(lock.acquire(true, 1s));
  CHECK(lock.count() == 3);
  CHECK(lock.is_owned());
  lock.release();
  lock.release();
  CHECK(lock.locked());
  lock.release();
  CHECK_FALSE(lock.locked());
  CHECK_FALSE(lock.is_owned());
  CHECK_THROWS_AS(lock.release(), procpool::StateError);
}

TEST_CASE_TEMPLATE("Sync.RLock.OwnerChecks", B, Processes, Threads) {
  typename B::RLock lock;
  lock.acquire();
  synctest::Worker<B> other([&] {
    bool threw = false;
    try {
      lock.release();
    } catch (const procpool::StateError&) {
      threw = true;
    }
    const bool blocked = !lock.acquire(false);
    const bool timed_out = !lock.acquire(true, 100ms);
    return threw && blocked && timed_out && !lock.is_owned();
  });
  CHECK(other.join());
  CHECK(lock.count() == 1);
  lock.release();
}

TEST_CASE_TEMPLATE("Sync.RLock.MutualExclusion", B, Processes, Threads) {
  typename B::RLock lock;
  typename B::template RawValue<long> counter(0);
  const int failures = synctest::run_workers<B>(4, [&](int) {
    for (int i = 0; i < 10000; ++i) {
      std::lock_guard outer(lock);
      std::lock_guard inner(lock);
      ++counter.get_obj();
    }
    return true;
  });
  CHECK(failures == 0);
  CHECK(counter.value() == 40000);
}

TEST_CASE("Sync.Lock.ThreadingAliases") {
  // procpool::threading's primitives are the thread backend's.
  static_assert(std::is_same_v<procpool::threading::Lock, procpool::dummy::Lock>);
  static_assert(std::is_same_v<procpool::threading::Condition, procpool::dummy::Condition>);
  procpool::threading::RLock r;
  std::lock_guard g(r);
  CHECK(r.is_owned());
}
