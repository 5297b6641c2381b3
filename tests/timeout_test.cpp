// Core.Timeout: every public blocking call with a timeout or a deadline, at the ends of the
// duration and time_point types (docs/ARCHITECTURE.md, "Waiting and timeouts"):
// - a max()-sized timeout (hours::max(), seconds::max(), nanoseconds::max(), 1e300 s) or a
//   time_point::max() deadline waits: the call is still blocked a while later, and returns
//   once another thread (or process) releases what it waits for;
// - a zero, negative or time_point::min() one tries once and returns at once (or, where Python
//   says so, throws ValueError / TimeoutError / Empty / Full at once).
// Concurrency cases run over both backends.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <thread>
#include <vector>

#include <unistd.h>

#include <procpool/procpool.hpp>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

/// How long a blocked call must still be blocked to count as "waits", and the most a call
/// that must return at once may take on a loaded machine.
constexpr auto kStillBlocked = 150ms;
constexpr auto kAtOnce = 1s;

/// The max()-sized timeouts every call is tried with (as durations of several types).
template <class F>
void for_each_huge_timeout(F f) {
  f(std::chrono::hours::max());
  f(std::chrono::seconds::max());
  f(std::chrono::nanoseconds::max());
  f(std::chrono::duration<double>(1e300));
}

/// Runs `wait` on another thread: it must still be blocked after kStillBlocked, then
/// `release()` must let it return true.
void check_waits_until_released(const std::function<bool()>& wait, const std::function<void()>& release) {
  std::atomic<int> outcome{0};  // 0: blocked, 1: returned true, 2: returned false, 3: threw
  std::thread waiter([&] {
    try {
      outcome.store(wait() ? 1 : 2);
    } catch (...) {
      outcome.store(3);
    }
  });
  std::this_thread::sleep_for(kStillBlocked);
  const int before = outcome.load();
  release();
  waiter.join();
  CHECK_MESSAGE(before == 0, "a max() timeout returned at once");
  CHECK(outcome.load() == 1);
}

/// `call` (true: it got what it waited for) must return false at once.
void check_fails_at_once(const std::function<bool()>& call) {
  const auto t0 = Clock::now();
  CHECK_FALSE(call());
  CHECK(Clock::now() - t0 < kAtOnce);
}

/// `call` must throw E at once.
template <class E>
void check_throws_at_once(const std::function<void()>& call) {
  const auto t0 = Clock::now();
  CHECK_THROWS_AS(call(), E);
  CHECK(Clock::now() - t0 < kAtOnce);
}

// The backend bundles of procpool/backend.hpp: one list of types per backend.
using procpool::Processes;
using procpool::Threads;

#define BOTH_BACKENDS Processes, Threads

/// Holds `lock` (any Python-style lock: acquire/release) on another thread until released, so
/// that the test's own thread is not the owner (RLock is re-entrant for its owner).
template <class L>
class HeldElsewhere {
public:
  explicit HeldElsewhere(L& lock) : lock_(lock) {
    holder_ = std::thread([this] {
      lock_.acquire();
      held_.store(true);
      while (!release_.load()) std::this_thread::sleep_for(1ms);
      lock_.release();
    });
    while (!held_.load()) std::this_thread::sleep_for(1ms);
  }
  void release() {
    release_.store(true);
    if (holder_.joinable()) holder_.join();
  }
  ~HeldElsewhere() { release(); }

private:
  L& lock_;
  std::atomic<bool> held_{false};
  std::atomic<bool> release_{false};
  std::thread holder_;
};

/// With `lock` held on another thread, `acquire(lock)` must still wait when that thread releases
/// it a while later, and then succeed.
template <class L, class Acquire>
void check_acquire_waits(L& lock, Acquire acquire) {
  HeldElsewhere<L> held(lock);
  check_waits_until_released(
      [&] {
        const bool got = acquire(lock);
        if (got) lock.release();
        return got;
      },
      [&] { held.release(); });
}

/// The lock-like checks shared by Lock, RLock and the locks of Value/Array.
template <class L>
void check_lock_timeouts(L& lock) {
  for_each_huge_timeout([&](auto huge) { check_acquire_waits(lock, [&](L& l) { return l.acquire(true, huge); }); });
  check_acquire_waits(lock, [](L& l) { return l.try_lock_until(Clock::time_point::max()); });
  check_acquire_waits(lock, [](L& l) { return l.try_lock_for(std::chrono::hours::max()); });
  HeldElsewhere<L> held(lock);
  check_fails_at_once([&] { return lock.acquire(true, 0s); });
  check_fails_at_once([&] { return lock.try_lock_for(-1s); });
  check_fails_at_once([&] { return lock.try_lock_for(std::chrono::hours::min()); });
  check_fails_at_once([&] { return lock.try_lock_until(Clock::time_point::min()); });
  check_fails_at_once([&] { return lock.try_lock_until(Clock::now() - 1h); });
  // Python: a negative timeout is a ValueError.
  check_throws_at_once<procpool::ValueError>([&] { (void)lock.acquire(true, -1s); });
}

} // namespace

TEST_CASE_TEMPLATE("Core.Timeout.Lock", B, BOTH_BACKENDS) {
  typename B::Lock lock;
  check_lock_timeouts(lock);
}

TEST_CASE_TEMPLATE("Core.Timeout.RLock", B, BOTH_BACKENDS) {
  typename B::RLock lock;
  check_lock_timeouts(lock);
}

TEST_CASE_TEMPLATE("Core.Timeout.ValueAndArrayLocks", B, BOTH_BACKENDS) {
  typename B::template Value<int> value(0);
  check_lock_timeouts(value.get_lock());
  typename B::template Array<int> array(4);
  check_lock_timeouts(array.get_lock());
}

TEST_CASE_TEMPLATE("Core.Timeout.Semaphore", B, BOTH_BACKENDS) {
  typename B::Semaphore sem(0);
  for_each_huge_timeout([&](auto huge) {
    check_waits_until_released([&] { return sem.acquire(true, huge); }, [&] { sem.release(); });
  });
  check_waits_until_released([&] { return sem.try_lock_until(Clock::time_point::max()); }, [&] { sem.release(); });
  check_fails_at_once([&] { return sem.acquire(true, 0s); });
  check_fails_at_once([&] { return sem.try_lock_for(std::chrono::hours::min()); });
  check_fails_at_once([&] { return sem.try_lock_until(Clock::time_point::min()); });
  check_throws_at_once<procpool::ValueError>([&] { (void)sem.acquire(true, -1s); });

  typename B::BoundedSemaphore bounded(1);
  REQUIRE(bounded.acquire());
  for_each_huge_timeout([&](auto huge) {
    check_waits_until_released(
        [&] {
          const bool got = bounded.acquire(true, huge);
          if (got) bounded.release();
          return got;
        },
        [&] { bounded.release(); });
    REQUIRE(bounded.acquire());
  });
  check_fails_at_once([&] { return bounded.acquire(true, 0s); });
  check_fails_at_once([&] { return bounded.try_lock_until(Clock::time_point::min()); });
  check_throws_at_once<procpool::ValueError>([&] { (void)bounded.acquire(true, -1s); });
}

TEST_CASE_TEMPLATE("Core.Timeout.Condition", B, BOTH_BACKENDS) {
  typename B::Condition cond;
  for_each_huge_timeout([&](auto huge) {
    std::atomic<bool> waiting{false};
    check_waits_until_released(
        [&] {
          cond.acquire();
          waiting.store(true);
          const bool notified = cond.wait(huge);
          cond.release();
          return notified;
        },
        [&] {
          while (!waiting.load()) std::this_thread::sleep_for(1ms);
          cond.acquire();  // the waiter has released it inside wait()
          cond.notify();
          cond.release();
        });
  });
  std::atomic<bool> flag{false};
  check_waits_until_released(
      [&] {
        cond.acquire();
        const bool ok = cond.wait_for([&] { return flag.load(); }, std::chrono::hours::max());
        cond.release();
        return ok;
      },
      [&] {
        cond.acquire();
        flag.store(true);
        cond.notify_all();
        cond.release();
      });
  cond.acquire();
  check_fails_at_once([&] { return cond.wait(0s); });
  check_fails_at_once([&] { return cond.wait(-1s); });
  check_fails_at_once([&] { return cond.wait(std::chrono::hours::min()); });
  check_fails_at_once([&] { return cond.wait_for([] { return false; }, -1s); });
  check_fails_at_once([&] { return cond.wait_for([] { return false; }, std::chrono::hours::min()); });
  cond.release();
}

TEST_CASE_TEMPLATE("Core.Timeout.Event", B, BOTH_BACKENDS) {
  typename B::Event event;
  for_each_huge_timeout([&](auto huge) {
    event.clear();
    check_waits_until_released([&] { return event.wait(huge); }, [&] { event.set(); });
  });
  event.clear();
  check_fails_at_once([&] { return event.wait(0s); });
  check_fails_at_once([&] { return event.wait(-1s); });
  check_fails_at_once([&] { return event.wait(std::chrono::hours::min()); });
}

TEST_CASE_TEMPLATE("Core.Timeout.Barrier", B, BOTH_BACKENDS) {
  for_each_huge_timeout([&](auto huge) {
    typename B::Barrier barrier(2);
    check_waits_until_released(
        [&] {
          (void)barrier.wait(huge);
          return true;
        },
        [&] { (void)barrier.wait(); });
  });
  {
    typename B::Barrier barrier(2, {}, std::chrono::hours::max());  // the default timeout
    check_waits_until_released(
        [&] {
          (void)barrier.wait();
          return true;
        },
        [&] { (void)barrier.wait(); });
  }
  // Python: a wait that times out breaks the barrier (BrokenBarrierError), at once here.
  for (const auto t : {std::chrono::duration<double>(0), std::chrono::duration<double>(-1)}) {
    typename B::Barrier barrier(2);
    check_throws_at_once<procpool::BrokenBarrierError>([&] { (void)barrier.wait(t); });
  }
}

TEST_CASE_TEMPLATE("Core.Timeout.Queue", B, BOTH_BACKENDS) {
  typename B::template Queue<int> q(1);
  for_each_huge_timeout([&](auto huge) {
    check_waits_until_released([&] { return q.get(true, huge) == 7; }, [&] { q.put(7); });
  });
  check_throws_at_once<procpool::Empty>([&] { (void)q.get(true, 0s); });
  check_throws_at_once<procpool::ValueError>([&] { (void)q.get(true, -1s); });
  check_throws_at_once<procpool::ValueError>([&] { (void)q.get(true, std::chrono::hours::min()); });

  q.put(1);  // full (maxsize 1)
  for_each_huge_timeout([&](auto huge) {
    check_waits_until_released(
        [&] {
          q.put(2, true, huge);
          return true;
        },
        [&] { CHECK(q.get() == 1); });
    CHECK(q.get() == 2);
    q.put(1);
  });
  check_throws_at_once<procpool::Full>([&] { q.put(3, true, 0s); });
  check_throws_at_once<procpool::ValueError>([&] { q.put(3, true, -1s); });
}

TEST_CASE_TEMPLATE("Core.Timeout.JoinableQueue", B, BOTH_BACKENDS) {
  typename B::template JoinableQueue<int> q;
  for_each_huge_timeout([&](auto huge) {
    q.put(1);
    CHECK(q.get() == 1);
    check_waits_until_released([&] { return q.join(huge); }, [&] { q.task_done(); });
  });
  q.put(1);
  check_fails_at_once([&] { return q.join(0s); });
  check_throws_at_once<procpool::ValueError>([&] { (void)q.join(-1s); });
  CHECK(q.get() == 1);
  q.task_done();
  CHECK(q.join(0s));
}

TEST_CASE_TEMPLATE("Core.Timeout.ConnectionPoll", B, BOTH_BACKENDS) {
  auto [a, b] = B::template Pipe<int>();
  for_each_huge_timeout([&](auto huge) {
    check_waits_until_released(
        [&] {
          const bool readable = b.poll(huge);
          if (readable) CHECK(b.recv() == 5);
          return readable;
        },
        [&] { a.send(5); });
  });
  check_fails_at_once([&] { return b.poll(0s); });
  check_fails_at_once([&] { return b.poll(-1s); });
  check_fails_at_once([&] { return b.poll(std::chrono::hours::min()); });
}

namespace {
// The gate pool tasks wait on: process-shared, created before any pool forks its workers.
procpool::Event* g_gate = nullptr;
int gated_identity(int x) {
  g_gate->wait();
  return x;
}
} // namespace

TEST_CASE_TEMPLATE("Core.Timeout.AsyncResult", B, BOTH_BACKENDS) {
  procpool::Event gate;
  g_gate = &gate;
  typename B::Pool pool(procpool::PoolOptions{.processes = 2, .start_method = procpool::StartMethod::Fork});
  for_each_huge_timeout([&](auto huge) {
    gate.clear();
    auto r = pool.apply_async(&gated_identity, 3);
    check_waits_until_released([&] { return r.get(huge) == 3; }, [&] { gate.set(); });
    gate.clear();
    auto w = pool.apply_async(&gated_identity, 4);
    check_waits_until_released([&] { return w.wait(huge); }, [&] { gate.set(); });
  });
  gate.clear();
  auto pending = pool.apply_async(&gated_identity, 5);
  check_fails_at_once([&] { return pending.wait(0s); });
  check_fails_at_once([&] { return pending.wait(-1s); });
  check_fails_at_once([&] { return pending.wait(std::chrono::hours::min()); });
  check_throws_at_once<procpool::TimeoutError>([&] { (void)pending.get(0s); });
  check_throws_at_once<procpool::TimeoutError>([&] { (void)pending.get(std::chrono::hours::min()); });
  gate.set();
  CHECK(pending.get() == 5);
  g_gate = nullptr;
}

TEST_CASE_TEMPLATE("Core.Timeout.IMapNext", B, BOTH_BACKENDS) {
  procpool::Event gate;
  g_gate = &gate;
  typename B::Pool pool(procpool::PoolOptions{.processes = 2, .start_method = procpool::StartMethod::Fork});
  const std::vector<int> in{1, 2, 3, 4};
  auto it = pool.imap(&gated_identity, in);
  check_throws_at_once<procpool::TimeoutError>([&] { (void)it.next(0s); });
  check_throws_at_once<procpool::TimeoutError>([&] { (void)it.next(-1s); });
  check_throws_at_once<procpool::TimeoutError>([&] { (void)it.next(std::chrono::hours::min()); });
  check_waits_until_released([&] { return it.next(std::chrono::hours::max()) == std::optional<int>(1); },
                             [&] { gate.set(); });
  CHECK(it.next(std::chrono::seconds::max()) == std::optional<int>(2));
  CHECK(it.next(std::chrono::duration<double>(1e300)) == std::optional<int>(3));
  CHECK(it.next(std::chrono::nanoseconds::max()) == std::optional<int>(4));
  CHECK(it.next(std::chrono::hours::max()) == std::nullopt);
  g_gate = nullptr;
}

namespace {
void wait_for_gate() { g_gate->wait(); }
} // namespace

TEST_CASE("Core.Timeout.ProcessJoin") {
  procpool::Event gate;
  g_gate = &gate;
  auto run = [&](const std::function<bool(procpool::Process&)>& join) {
    gate.clear();
    procpool::Process p(procpool::ProcessOptions{.name = {}, .daemon = std::nullopt,
                                                 .start_method = procpool::StartMethod::Fork},
                        &wait_for_gate);
    p.start();
    check_waits_until_released([&] { return join(p); }, [&] { gate.set(); });
    CHECK(p.exitcode() == std::optional<int>(0));
  };
  for_each_huge_timeout([&](auto huge) { run([huge](procpool::Process& p) { return p.join(huge); }); });
  run([](procpool::Process& p) { return p.join_until(Clock::time_point::max()); });

  gate.clear();
  procpool::Process p(procpool::ProcessOptions{.name = {}, .daemon = std::nullopt,
                                               .start_method = procpool::StartMethod::Fork},
                      &wait_for_gate);
  p.start();
  check_fails_at_once([&] { return p.join(0s); });
  check_fails_at_once([&] { return p.join(-1s); });
  check_fails_at_once([&] { return p.join(std::chrono::hours::min()); });
  check_fails_at_once([&] { return p.join_until(Clock::time_point::min()); });
  check_fails_at_once([&] { return p.join_until(Clock::now() - 1h); });
  gate.set();
  p.join();
  g_gate = nullptr;
}

TEST_CASE("Core.Timeout.ThreadJoin") {
  namespace threading = procpool::threading;
  std::atomic<bool> go{false};
  auto body = [&] {
    while (!go.load()) std::this_thread::sleep_for(1ms);
  };
  auto run = [&](const std::function<bool(threading::Thread&)>& join) {
    go.store(false);
    threading::Thread t(body);
    t.start();
    check_waits_until_released([&] { return join(t); }, [&] { go.store(true); });
  };
  for_each_huge_timeout([&](auto huge) {
    run([huge](threading::Thread& t) { return t.join(huge); });
    run([huge](threading::Thread& t) { return t.handle().join(huge); });
  });

  go.store(false);
  threading::Thread t(body);
  t.start();
  check_fails_at_once([&] { return t.join(0s); });
  check_fails_at_once([&] { return t.join(-1s); });
  check_fails_at_once([&] { return t.join(std::chrono::hours::min()); });
  check_fails_at_once([&] { return t.handle().join(std::chrono::hours::min()); });
  go.store(true);
  t.join();
}

TEST_CASE("Core.Timeout.Timer") {
  namespace threading = procpool::threading;
  // A max()-sized interval never fires: only cancel() ends the wait.
  for_each_huge_timeout([&](auto huge) {
    std::atomic<bool> fired{false};
    threading::Timer timer(huge, [&] { fired.store(true); });
    timer.start();
    std::this_thread::sleep_for(kStillBlocked);
    CHECK_FALSE(fired.load());
    CHECK(timer.is_alive());
    timer.cancel();
    CHECK(timer.join(10s));
    CHECK_FALSE(fired.load());
  });
  // A zero or negative interval fires at once.
  for (const auto interval : {std::chrono::nanoseconds(0), std::chrono::nanoseconds(-1'000'000'000),
                              std::chrono::nanoseconds::min()}) {
    std::atomic<bool> fired{false};
    const auto t0 = Clock::now();
    threading::Timer timer(interval, [&] { fired.store(true); });
    timer.start();
    CHECK(timer.join(10s));
    CHECK(fired.load());
    CHECK(Clock::now() - t0 < kAtOnce);
  }
}
