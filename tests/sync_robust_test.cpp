// What a dead holder leaves behind: SIGKILL (processes) or thread exit (threads) while
// holding a Lock, RLock or Condition lock; the next acquirer gets it and is told.
#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <mutex>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include <procpool/sync.hpp>

#include "run_program.hpp"
#include "sync_test_support.hpp"

using namespace std::chrono_literals;

namespace {

// Forks a child that runs `hold` (which acquires something) and then kills itself with
// SIGKILL, still holding it. Returns the child's pid (not reaped: a zombie until waited).
template <class F>
pid_t die_holding(F hold) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    hold();
    ::raise(SIGKILL);
    ::_exit(3);  // not reached
  }
  return pid;
}

bool killed_by_sigkill(pid_t pid) {
  int status = 0;
  return ::waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

} // namespace

TEST_CASE("Sync.Robust.LockHolderKilledZombie") {
  // The dead holder is still an unreaped zombie of ours when we acquire: it counts as dead.
  procpool::Lock lock;
  procpool::Event held;
  const pid_t pid = die_holding([&] {
    lock.acquire();
    held.set();
  });
  REQUIRE(held.wait(10s));
  std::this_thread::sleep_for(50ms);
  CHECK(lock.locked());
  const auto t0 = synctest::Clock::now();
  CHECK(lock.acquire(true, 10s));
  CHECK(synctest::seconds_since(t0) < 2.0);
  CHECK(lock.owner_died());
  lock.release();
  CHECK_FALSE(lock.owner_died());
  CHECK(killed_by_sigkill(pid));
  // Back to normal.
  CHECK(lock.acquire(false));
  CHECK_FALSE(lock.owner_died());
  lock.release();
}

TEST_CASE("Sync.Robust.LockTryAcquireAfterReap") {
  procpool::Lock lock;
  const pid_t pid = die_holding([&] { lock.acquire(); });
  REQUIRE(killed_by_sigkill(pid));
  CHECK(lock.locked());
  // A non-blocking acquire checks the owner at once.
  CHECK(lock.acquire(false));
  CHECK(lock.owner_died());
  lock.release();
}

TEST_CASE("Sync.Robust.SleepingWaiterRecovers") {
  // Waiters already asleep when the holder dies are not stranded: one gets the lock, then
  // the others in turn, each exactly once.
  procpool::Lock lock;
  procpool::Event held;
  procpool::RawValue<int> died_seen(0);
  procpool::RawValue<int> passed(0);
  const pid_t holder = die_holding([&] {
    lock.acquire();
    held.set();
    std::this_thread::sleep_for(300ms);
  });
  REQUIRE(held.wait(10s));
  const int failures = synctest::run_workers<procpool::Processes>(3, [&](int) {
    if (!lock.acquire(true, 20s)) return false;
    if (lock.owner_died()) ++died_seen.get_obj();
    ++passed.get_obj();
    lock.release();
    return true;
  });
  CHECK(failures == 0);
  CHECK(passed.value() == 3);
  CHECK(died_seen.value() == 1);
  CHECK(killed_by_sigkill(holder));
}

TEST_CASE("Sync.Robust.RLockHolderKilled") {
  procpool::RLock lock;
  const pid_t pid = die_holding([&] {
    lock.acquire();
    lock.acquire();  // recursion depth 2 dies with it
  });
  REQUIRE(killed_by_sigkill(pid));
  CHECK(lock.acquire(true, 10s));
  CHECK(lock.owner_died());
  CHECK(lock.count() == 1);
  lock.release();
  CHECK_FALSE(lock.locked());
}

TEST_CASE("Sync.Robust.ConditionWaiterNotStranded") {
  // We wait on the condition; a peer takes its lock and dies: our wait ends (timeout) and
  // re-acquires the lock, learning that its previous owner died.
  procpool::Condition cond;
  procpool::Event waiting;
  std::unique_lock g(cond);
  const pid_t pid = die_holding([&] {
    waiting.wait(10s);
    cond.acquire();  // possible only once we are inside wait()
  });
  waiting.set();
  const auto t0 = synctest::Clock::now();
  CHECK_FALSE(cond.wait(300ms));
  CHECK(synctest::seconds_since(t0) < 5.0);
  CHECK(cond.owner_died());
  CHECK(cond.get_lock().is_owned());
  CHECK(killed_by_sigkill(pid));
  g.unlock();
  CHECK_FALSE(cond.owner_died());
}

TEST_CASE("Sync.Robust.ValueLockHolderKilled") {
  procpool::Value<long> v(41);
  const pid_t pid = die_holding([&] { v.get_lock().acquire(); });
  REQUIRE(killed_by_sigkill(pid));
  v.set(v.value() + 1);  // would hang forever with a non-robust lock
  CHECK(v.value() == 42);
}

TEST_CASE("Sync.Robust.BarrierPartyKilledWhileWaiting") {
  // A party killed while waiting had arrived: the round completes with the next arrival.
  procpool::Barrier barrier(2);
  const pid_t pid = die_holding([&] { barrier.wait(20s); });
  while (barrier.n_waiting() < 1) std::this_thread::sleep_for(1ms);
  ::kill(pid, SIGKILL);
  CHECK(killed_by_sigkill(pid));
  // The dead party had arrived: our arrival completes the round.
  CHECK(barrier.wait(10s) == 1);
}

TEST_CASE("Sync.Robust.ThreadExitRLock") {
  // Thread backend: an RLock is owned by a thread; a thread that ends holding it is a dead owner.
  procpool::dummy::RLock lock;
  std::thread([&] { lock.acquire(); }).join();
  CHECK(lock.acquire(true, 10s));
  CHECK(lock.owner_died());
  lock.release();
  CHECK_FALSE(lock.locked());
}

TEST_CASE("Sync.Robust.ThreadExitLockIsNotDeath") {
  // A Lock has no owning thread (Python): a thread may acquire it and leave the release to
  // another thread, so its exit must not count as a death.
  procpool::dummy::Lock lock;
  std::thread([&] { lock.acquire(); }).join();
  CHECK_FALSE(lock.acquire(true, 100ms));
  lock.release();
  CHECK(lock.acquire(false));
  CHECK_FALSE(lock.owner_died());
  lock.release();
}

TEST_CASE("Sync.Robust.NoDevShmLeftovers") {
  // Everything above used memfd segments: nothing of ours may appear in /dev/shm.
  CHECK(testing::procpool_shm_entries().empty());
}
