// Condition, Event, Semaphore, BoundedSemaphore and Barrier on both backends.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>

#include <procpool/sync.hpp>

#include "sync_test_support.hpp"

using namespace std::chrono_literals;
using procpool::Processes;
using procpool::Threads;

TEST_CASE_TEMPLATE("Sync.Condition.ProducerConsumer", B, Processes, Threads) {
  // A bounded buffer of 4 slots: 2 producers put 1..N, 2 consumers take them all.
  constexpr int kPerProducer = 2000;
  constexpr long kSlots = 4;
  typename B::Condition cond;
  typename B::template RawArray<long> buf(static_cast<std::size_t>(kSlots));
  typename B::template RawArray<long> meta(4);  // head, tail, count, total consumed
  auto& head = meta[0];
  auto& tail = meta[1];
  auto& count = meta[2];
  const int failures = synctest::run_workers<B>(4, [&](int w) {
    if (w < 2) {  // producer
      for (long v = 1; v <= kPerProducer; ++v) {
        std::lock_guard g(cond);
        if (!cond.wait_for([&] { return count < kSlots; }, 20s)) return false;
        buf[static_cast<std::size_t>(tail)] = v;
        tail = (tail + 1) % kSlots;
        ++count;
        cond.notify_all();
      }
    } else {  // consumer: takes half of all items
      long sum = 0;
      for (int i = 0; i < kPerProducer; ++i) {
        std::lock_guard g(cond);
        if (!cond.wait_for([&] { return count > 0; }, 20s)) return false;
        sum += buf[static_cast<std::size_t>(head)];
        head = (head + 1) % kSlots;
        --count;
        cond.notify_all();
      }
      std::lock_guard g(cond);
      meta[3] += sum;
    }
    return true;
  });
  CHECK(failures == 0);
  CHECK(meta[2] == 0);
  CHECK(meta[3] == 2L * kPerProducer * (kPerProducer + 1) / 2);
}

TEST_CASE_TEMPLATE("Sync.Condition.WaitTimeoutAndErrors", B, Processes, Threads) {
  typename B::Condition cond;
  CHECK_THROWS_AS(cond.wait(10ms), procpool::StateError);
  CHECK_THROWS_AS(cond.notify(), procpool::StateError);
  std::lock_guard g(cond);
  cond.acquire();  // re-entrant: wait() must release both levels and restore them
  const auto t0 = synctest::Clock::now();
  CHECK_FALSE(cond.wait(200ms));
  const double waited = synctest::seconds_since(t0);
  CHECK(waited >= 0.19);
  CHECK(waited < 3.0);
  CHECK(cond.get_lock().count() == 2);
  cond.release();
  // wait_for returns the predicate's last value.
  CHECK_FALSE(cond.wait_for([] { return false; }, 50ms));
  CHECK(cond.wait_for([] { return true; }, 0s));
}

TEST_CASE_TEMPLATE("Sync.Condition.NotifyAllWakesEveryone", B, Processes, Threads) {
  typename B::Condition cond;
  typename B::template RawValue<int> ready(0);
  typename B::template RawValue<int> go(0);
  constexpr int kWaiters = 3;
  const int failures = synctest::run_workers<B>(kWaiters + 1, [&](int w) {
    std::lock_guard g(cond);
    if (w < kWaiters) {
      ++ready.get_obj();
      cond.notify_all();
      return cond.wait_for([&] { return go.get_obj() != 0; }, 20s);
    }
    if (!cond.wait_for([&] { return ready.get_obj() == kWaiters; }, 20s)) return false;
    go.get_obj() = 1;
    cond.notify_all();
    return true;
  });
  CHECK(failures == 0);
}

TEST_CASE_TEMPLATE("Sync.Condition.NotifyWakesAtMostN", B, Processes, Threads) {
  // Python's notify(n) wakes at most n waiters. Rounds: once every waiter waits and every
  // earlier wake-up has been taken, notify(n) with n = 1 or 2. The waiters use short timeouts,
  // so they keep timing out and re-entering wait() (where a notify used to make each of them
  // return true, not only the n it woke). The books are kept under the condition's lock.
  typename B::Condition cond;
  // [0] wait() calls that returned true, [1] wake-ups granted, [2] stop, [3] waiting now
  typename B::template RawArray<long> books(4);
  constexpr int kWaiters = 4;
  constexpr int kRounds = 150;
  const int failures = synctest::run_workers<B>(kWaiters + 1, [&](int w) {
    if (w < kWaiters) {
      for (;;) {
        std::lock_guard g(cond);
        if (books[2] != 0) return true;
        ++books[3];
        const bool notified = cond.wait(std::chrono::microseconds(500 + 300 * w));
        --books[3];
        if (notified) ++books[0];
      }
    }
    bool ok = true;
    for (int round = 0; round < kRounds && ok;) {
      {
        std::lock_guard g(cond);
        if (books[0] > books[1]) ok = false;  // woken more than granted
        else if (books[3] == kWaiters && books[0] == books[1]) {
          const int n = 1 + round % 2;
          books[1] += n;
          cond.notify(n);
          ++round;
        }
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    std::this_thread::sleep_for(20ms);  // late, wrong wake-ups of the last round
    std::lock_guard g(cond);
    if (books[0] > books[1]) ok = false;
    books[2] = 1;
    cond.notify_all();
    return ok;
  });
  CHECK(failures == 0);
  CHECK(books[0] <= books[1] + kWaiters);  // + the final notify_all
}

TEST_CASE_TEMPLATE("Sync.Condition.NotifyOneWakesExactlyOneSleeper", B, Processes, Threads) {
  typename B::Condition cond;
  typename B::template RawArray<int> state(3);  // [0] waiting, [1] woken, [2] notified
  constexpr int kWaiters = 3;
  const int failures = synctest::run_workers<B>(kWaiters + 1, [&](int w) {
    if (w < kWaiters) {
      std::lock_guard g(cond);
      ++state[0];
      // Woken by notify(1) or by the final notify_all(); false only on the 20 s timeout.
      const bool ok = cond.wait_for([&] { return state[2] != 0; }, 20s);
      ++state[1];
      return ok;
    }
    // No notify before everyone sleeps (a notify_all to say "I wait" would hand out wake-ups
    // that are still due when notify(1) runs): poll. A waiter counted under the lock has
    // released it only inside wait().
    for (int i = 0;; ++i) {
      {
        std::lock_guard g(cond);
        if (state[0] == kWaiters) {
          state[2] = 1;
          cond.notify(1);
          break;
        }
      }
      if (i == 20000) return false;
      std::this_thread::sleep_for(1ms);
    }
    std::this_thread::sleep_for(200ms);  // time for extra, wrong wake-ups to show
    std::lock_guard g(cond);
    const bool one = state[1] <= 1;
    cond.notify_all();
    return one;
  });
  CHECK(failures == 0);
}

TEST_CASE_TEMPLATE("Sync.Event.WakeAll", B, Processes, Threads) {
  typename B::Event event;
  typename B::Semaphore started(0);
  CHECK_FALSE(event.is_set());
  constexpr int kWaiters = 4;
  synctest::Worker<B> setter([&] {
    for (int i = 0; i < kWaiters; ++i)
      if (!started.acquire(true, 20s)) return false;
    std::this_thread::sleep_for(50ms);  // let the waiters reach the futex
    event.set();
    return true;
  });
  const int failures = synctest::run_workers<B>(kWaiters, [&](int) {
    started.release();
    const auto t0 = synctest::Clock::now();
    return event.wait(20s) && event.is_set() && synctest::seconds_since(t0) < 10.0;
  });
  CHECK(failures == 0);
  CHECK(setter.join());
  CHECK(event.is_set());
  CHECK(event.wait(0s));
  event.clear();
  CHECK_FALSE(event.is_set());
}

TEST_CASE_TEMPLATE("Sync.Event.Timeout", B, Processes, Threads) {
  typename B::Event event;
  const auto t0 = synctest::Clock::now();
  CHECK_FALSE(event.wait(200ms));
  const double waited = synctest::seconds_since(t0);
  CHECK(waited >= 0.19);
  CHECK(waited < 3.0);
  CHECK_FALSE(event.wait(-1s));  // negative: do not wait, as Python
  CHECK_FALSE(event.wait(0s));
}

TEST_CASE_TEMPLATE("Sync.Event.SetThenClearStillWakes", B, Processes, Threads) {
  // Python: a waiter woken by set() returns True even if clear() follows at once.
  typename B::Event event;
  typename B::Event waiting;
  synctest::Worker<B> waiter([&] {
    waiting.set();
    return event.wait(20s);
  });
  REQUIRE(waiting.wait(10s));
  std::this_thread::sleep_for(100ms);
  event.set();
  event.clear();
  CHECK(waiter.join());
}

TEST_CASE_TEMPLATE("Sync.Semaphore.LimitsConcurrency", B, Processes, Threads) {
  constexpr int kLimit = 3;
  typename B::Semaphore sem(kLimit);
  typename B::Lock lock;
  typename B::template RawArray<int> stats(2);  // active, max active
  const int failures = synctest::run_workers<B>(8, [&](int) {
    for (int i = 0; i < 20; ++i) {
      std::lock_guard s(sem);
      {
        std::lock_guard g(lock);
        if (++stats[0] > stats[1]) stats[1] = stats[0];
      }
      std::this_thread::sleep_for(200us);
      std::lock_guard g(lock);
      --stats[0];
    }
    return true;
  });
  CHECK(failures == 0);
  CHECK(stats[0] == 0);
  CHECK(stats[1] <= kLimit);
  CHECK(stats[1] >= 1);
  CHECK(sem.get_value() == kLimit);
}

TEST_CASE_TEMPLATE("Sync.Semaphore.TimeoutAndRelease", B, Processes, Threads) {
  typename B::Semaphore sem(0);
  CHECK_FALSE(sem.acquire(false));
  const auto t0 = synctest::Clock::now();
  CHECK_FALSE(sem.acquire(true, 200ms));
  CHECK(synctest::seconds_since(t0) >= 0.19);
  CHECK_THROWS_AS(typename B::Semaphore(-1), procpool::ValueError);
  CHECK_THROWS_AS(sem.release(0), procpool::ValueError);
  // release(n) lets n waiters through.
  const int failures = synctest::run_workers<B>(3, [&](int w) {
    if (w == 0) {
      std::this_thread::sleep_for(50ms);
      sem.release(2);
      return true;
    }
    return sem.acquire(true, 20s);
  });
  CHECK(failures == 0);
  CHECK(sem.get_value() == 0);
  // An unbounded semaphore may grow past its initial value.
  sem.release(5);
  CHECK(sem.get_value() == 5);
}

TEST_CASE_TEMPLATE("Sync.Semaphore.NonBlockingWithTimeoutAsPython", B, Processes, Threads) {
  // multiprocessing's Semaphore and Lock ignore a timeout when not blocking; threading's raise.
  typename B::Semaphore sem(1);
  typename B::Lock lock;
  if constexpr (B::interprocess) {
    CHECK(sem.acquire(false, 1s));
    CHECK_FALSE(sem.acquire(false, 1s));
    CHECK(lock.acquire(false, 1s));
    CHECK_FALSE(lock.acquire(false, 1s));
  } else {
    CHECK_THROWS_AS(sem.acquire(false, 1s), procpool::ValueError);
    CHECK_THROWS_AS(lock.acquire(false, 1s), procpool::ValueError);
  }
}

TEST_CASE_TEMPLATE("Sync.Semaphore.BoundedOverRelease", B, Processes, Threads) {
  typename B::BoundedSemaphore sem(2);
  CHECK_THROWS_AS(sem.release(), procpool::ValueError);
  sem.acquire();
  sem.acquire();
  sem.release();
  CHECK_THROWS_AS(sem.release(2), procpool::ValueError);
  sem.release();
  CHECK(sem.get_value() == 2);
  CHECK_THROWS_AS(sem.release(), procpool::ValueError);
}

TEST_CASE_TEMPLATE("Sync.Barrier.Rounds", B, Processes, Threads) {
  constexpr int kParties = 4;
  constexpr int kRounds = 5;
  typename B::template RawArray<int> seen(kRounds);   // bitmask of indices per round
  typename B::template RawValue<int> actions(0);
  typename B::Lock lock;
  typename B::Barrier barrier(kParties, [&] { ++actions.get_obj(); });
  CHECK(barrier.parties() == kParties);
  const int failures = synctest::run_workers<B>(kParties, [&](int) {
    for (int r = 0; r < kRounds; ++r) {
      const std::size_t index = barrier.wait(20s);
      if (index >= kParties) return false;
      std::lock_guard g(lock);
      seen[static_cast<std::size_t>(r)] |= 1 << index;
    }
    return true;
  });
  CHECK(failures == 0);
  for (int r = 0; r < kRounds; ++r) CHECK(seen[static_cast<std::size_t>(r)] == 0xF);
  CHECK(actions.value() == kRounds);
  CHECK_FALSE(barrier.broken());
  CHECK(barrier.n_waiting() == 0);
}

TEST_CASE_TEMPLATE("Sync.Barrier.TimeoutBreaks", B, Processes, Threads) {
  typename B::Barrier barrier(2);
  const auto t0 = synctest::Clock::now();
  CHECK_THROWS_AS(barrier.wait(200ms), procpool::BrokenBarrierError);
  const double waited = synctest::seconds_since(t0);
  CHECK(waited >= 0.19);
  CHECK(waited < 3.0);
  CHECK(barrier.broken());
  CHECK_THROWS_AS(barrier.wait(1s), procpool::BrokenBarrierError);
  barrier.reset();
  CHECK_FALSE(barrier.broken());
  synctest::Worker<B> other([&] { return barrier.wait(20s) < 2; });
  CHECK(barrier.wait(20s) < 2);
  CHECK(other.join());
}

TEST_CASE_TEMPLATE("Sync.Barrier.DefaultTimeout", B, Processes, Threads) {
  typename B::Barrier barrier(3, {}, 150ms);
  CHECK_THROWS_AS(barrier.wait(), procpool::BrokenBarrierError);
  CHECK(barrier.broken());
}

TEST_CASE_TEMPLATE("Sync.Barrier.AbortAndResetReleaseWaiters", B, Processes, Threads) {
  typename B::Barrier barrier(3);
  auto expect_broken = [&] {
    try {
      barrier.wait(20s);
    } catch (const procpool::BrokenBarrierError&) {
      return true;
    }
    return false;
  };
  {
    synctest::Worker<B> waiter(expect_broken);
    while (barrier.n_waiting() < 1) std::this_thread::sleep_for(1ms);
    barrier.abort();
    CHECK(waiter.join());
    CHECK(barrier.broken());
  }
  barrier.reset();
  CHECK_FALSE(barrier.broken());
  {
    // reset() while two parties wait: both get BrokenBarrierError, the barrier stays usable.
    synctest::Worker<B> w1(expect_broken);
    synctest::Worker<B> w2(expect_broken);
    while (barrier.n_waiting() < 2) std::this_thread::sleep_for(1ms);
    barrier.reset();
    CHECK(w1.join());
    CHECK(w2.join());
  }
  CHECK_FALSE(barrier.broken());
  const int failures = synctest::run_workers<B>(3, [&](int) { return barrier.wait(20s) < 3; });
  CHECK(failures == 0);
  CHECK_THROWS_AS(typename B::Barrier(0), procpool::ValueError);
}

TEST_CASE_TEMPLATE("Sync.Barrier.FailingActionBreaks", B, Processes, Threads) {
  typename B::Barrier barrier(1, [] { throw std::runtime_error("action failed"); });
  CHECK_THROWS_AS(barrier.wait(), std::runtime_error);
  CHECK(barrier.broken());
}
