// Pipe and Connection on both backends: duplex and one-way ends, poll with timeouts, EOF
// after the peer closes, BrokenPipeError, large items, and ends passed to spawned children.
#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <unistd.h>

#include <procpool/procpool.hpp>

#include "queue_support.hpp"
#include "run_program.hpp"
#include "start_methods.hpp"

using namespace std::chrono_literals;
using procpool::Processes;
using procpool::Threads;

namespace {

void child_doubles(procpool::Connection<int>& parent_end, procpool::Connection<int>& conn) {
  parent_end.close();  // a forked child inherited it: close it, or the parent's close gives no EOF
  for (;;) {
    int v = 0;
    try {
      v = conn.recv();
    } catch (const procpool::EOFError&) {
      return;
    }
    conn.send(v * 2);
  }
}

// Targets of the hold/close tests (functions, so that spawn and forkserver can run them).
// Each first closes its copy of the parent's end (a forked child inherited it), as CPython
// programs do.
void send_three_and_return(procpool::Connection<int>& parent_end, procpool::Connection<int>& conn) {
  parent_end.close();
  for (int i = 0; i < 3; ++i) conn.send(i);
  // No close(): the process's exit drops its hold on the end.
}

void send_seven_then_sleep(procpool::Connection<int>& parent_end, procpool::Connection<int>& conn) {
  parent_end.close();
  conn.send(7);
  for (;;) ::pause();  // killed by the test
}

/// The message of the StateError that `f` throws ("" if it throws none).
template <class F>
std::string state_error_of(F f) {
  try {
    f();
  } catch (const procpool::StateError& e) {
    return e.what();
  }
  return "";
}

} // namespace

TEST_CASE_TEMPLATE("Queue.Pipe.DuplexBothWays", B, Processes, Threads) {
  auto [a, b] = B::template Pipe<std::string>();
  CHECK(a.readable());
  CHECK(a.writable());
  qtest::Workers<B> w;
  w.spawn([&a, &b] {
    if constexpr (B::interprocess) a.close();  // the forked copy of the parent's end
    for (;;) {
      std::string s;
      try {
        s = b.recv();
      } catch (const procpool::EOFError&) {
        return 0;
      }
      b.send(s + "!");
    }
  });
  for (int i = 0; i < 1000; ++i) {
    a.send("msg" + std::to_string(i));
    REQUIRE(a.recv() == "msg" + std::to_string(i) + "!");
  }
  a.close();  // the worker's recv sees EOF
  CHECK(qtest::all_zero(w.join()));
  CHECK_THROWS_AS(a.send("late"), procpool::StateError);
}

TEST_CASE_TEMPLATE("Queue.Pipe.OneWayEnds", B, Processes, Threads) {
  auto [r, s] = B::template Pipe<int>(false);
  CHECK(r.readable());
  CHECK_FALSE(r.writable());
  CHECK(s.writable());
  CHECK_FALSE(s.readable());
  CHECK_THROWS_AS(r.send(1), procpool::StateError);
  CHECK_THROWS_AS((void)s.recv(), procpool::StateError);
  s.send(5);
  CHECK(r.recv() == 5);
}

TEST_CASE_TEMPLATE("Queue.Pipe.PollHonoursTimeouts", B, Processes, Threads) {
  auto [a, b] = B::template Pipe<int>();
  CHECK_FALSE(a.poll());
  auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(a.poll(50ms));
  CHECK(qtest::ms_since(t0) >= 50ms);
  qtest::Workers<B> w;
  w.spawn([&b] {
    std::this_thread::sleep_for(50ms);
    b.send(9);
    return 0;
  });
  CHECK(a.poll(20s));
  CHECK(a.poll());  // polling consumes nothing
  CHECK(a.recv() == 9);
  CHECK(qtest::all_zero(w.join()));
  b.close();
  CHECK(a.poll(std::nullopt));  // end of file counts as readable, as in Python
  CHECK_THROWS_AS((void)a.recv(), procpool::EOFError);
}

TEST_CASE_TEMPLATE("Queue.Pipe.EofOnlyAfterDrainingAndBrokenPipe", B, Processes, Threads) {
  auto [a, b] = B::template Pipe<int>();
  b.send(1);
  b.send(2);
  b.close();
  CHECK(a.recv() == 1);
  CHECK(a.recv() == 2);
  CHECK_THROWS_AS((void)a.recv(), procpool::EOFError);
  CHECK_THROWS_AS(a.send(3), procpool::BrokenPipeError);
  CHECK(b.closed());
  CHECK_THROWS_AS((void)b.recv(), procpool::StateError);
}

TEST_CASE_TEMPLATE("Queue.Pipe.BlockedRecvWakesOnClose", B, Processes, Threads) {
  auto [a, b] = B::template Pipe<int>();
  std::thread closer([&b] {
    std::this_thread::sleep_for(50ms);
    b.close();
  });
  CHECK_THROWS_AS((void)a.recv(), procpool::EOFError);
  closer.join();
}

TEST_CASE_TEMPLATE("Queue.Pipe.LargeItemsAndTuples", B, Processes, Threads) {
  using Msg = std::tuple<int, std::optional<int>, std::string>;
  auto [a, b] = B::template Pipe<Msg>();
  qtest::Workers<B> w;
  w.spawn([&b] {
    for (int i = 0; i < 8; ++i) b.send(Msg{i, std::nullopt, std::string(std::size_t{1} << 20, static_cast<char>('a' + i))});
    return 0;
  });
  for (int i = 0; i < 8; ++i) {
    const Msg m = a.recv();
    CHECK(std::get<0>(m) == i);
    CHECK_FALSE(std::get<1>(m).has_value());
    CHECK(std::get<2>(m).size() == (std::size_t{1} << 20));
    CHECK(std::get<2>(m).find_first_not_of(static_cast<char>('a' + i)) == std::string::npos);
  }
  CHECK(qtest::all_zero(w.join()));
}

TEST_CASE("Queue.Pipe.PingPongThroughAPipeOfThreads") {
  // The dummy:: names are the thread backend's public spelling.
  auto [a, b] = procpool::dummy::Pipe<int>();
  std::thread t([&b] {
    for (int i = 0; i < 100; ++i) b.send(b.recv() + 1);
  });
  int v = 0;
  for (int i = 0; i < 100; ++i) {
    a.send(v);
    v = a.recv();
  }
  t.join();
  CHECK(v == 100);
}

TEST_CASE("Queue.Pipe.EndsPassedToChildren") {
  for (const auto m : {procpool::StartMethod::Fork, procpool::StartMethod::Spawn, procpool::StartMethod::Forkserver}) {
    CAPTURE(static_cast<int>(m));
    auto [parent, child] = procpool::Pipe<int>();
    procpool::Process p(procpool::ProcessOptions{.name = {}, .daemon = std::nullopt, .start_method = m}, &child_doubles,
                        std::ref(parent), std::ref(child));
    p.start();
    for (int i = 0; i < 50; ++i) {
      parent.send(i);
      REQUIRE(parent.recv() == 2 * i);
    }
    parent.close();
    p.join();
    CHECK(p.exitcode() == 0);
  }
}

TEST_CASE_TEMPLATE("Queue.Pipe.CloseIsLocalToTheProcess", M, ALL_START_METHODS) {
  // CPython's idiom: the parent closes its copy of the child's end right after start(); the
  // child still uses its own, and the parent sees end of file once the child is gone.
  auto [parent, child] = procpool::Pipe<int>();
  procpool::Process p(testing::options<M>(), &send_three_and_return, std::ref(parent), std::ref(child));
  p.start();
  child.close();
  for (int i = 0; i < 3; ++i) CHECK(parent.recv() == i);
  CHECK_THROWS_AS((void)parent.recv(), procpool::EOFError);
  p.join();
  CHECK(p.exitcode() == 0);
}

TEST_CASE_TEMPLATE("Queue.Pipe.RecvSeesEofWhenThePeerProcessIsKilled", M, ALL_START_METHODS) {
  auto [parent, child] = procpool::Pipe<int>();
  procpool::Process p(testing::options<M>(), &send_seven_then_sleep, std::ref(parent), std::ref(child));
  p.start();
  child.close();
  REQUIRE(parent.recv() == 7);
  p.kill();
  CHECK_THROWS_AS((void)parent.recv(), procpool::EOFError);  // blocked first, then notices
  CHECK(parent.poll(std::nullopt));                          // end of file is readable
  p.join();
  CHECK(p.exitcode() == -SIGKILL);
}

TEST_CASE_TEMPLATE("Queue.Pipe.SendSeesBrokenPipeWhenThePeerProcessIsKilled", M, ALL_START_METHODS) {
  auto [parent, child] = procpool::Pipe<int>(true, procpool::QueueOptions{4096});
  procpool::Process p(testing::options<M>(), &send_seven_then_sleep, std::ref(parent), std::ref(child));
  p.start();
  child.close();
  REQUIRE(parent.recv() == 7);
  p.kill();
  p.join();
  // Sends fill the ring (nobody reads), then the blocked send notices the dead peer.
  CHECK_THROWS_AS(
      [&] {
        for (;;) parent.send(1);
      }(),
      procpool::BrokenPipeError);
}

TEST_CASE("Queue.Pipe.ForkedHolderKeepsTheEndOpen") {
  // A forked child inherits both ends, as with CPython's fork: the parent's close() of an end
  // does not end it while the child still holds a copy; the child's exit does.
  auto [a, b] = procpool::Pipe<int>();
  procpool::Event closed_in_parent;
  qtest::Workers<Processes> w;
  w.spawn([&a, &b, &closed_in_parent] {
    a.close();
    if (!closed_in_parent.wait(std::chrono::seconds(20))) return 1;
    b.send(5);  // our copy of b still works, and a's holders (only the parent) read it
    return 0;
  });
  b.close();
  closed_in_parent.set();
  CHECK(a.recv() == 5);
  CHECK(qtest::all_zero(w.join()));
  CHECK_THROWS_AS((void)a.recv(), procpool::EOFError);
}

TEST_CASE_TEMPLATE("Queue.Pipe.DestroyedEndIsClosed", B, Processes, Threads) {
  auto [a, b] = B::template Pipe<int>();
  {
    auto gone = std::move(b);
    gone.send(1);
  }  // destroyed without close(), as CPython's collected Connection
  CHECK(a.recv() == 1);
  CHECK_THROWS_AS((void)a.recv(), procpool::EOFError);
  CHECK_THROWS_AS(a.send(2), procpool::BrokenPipeError);
}

TEST_CASE_TEMPLATE("Queue.Pipe.MovedFromEndSaysSo", B, Processes, Threads) {
  auto [a, b] = B::template Pipe<int>();
  auto c = std::move(a);
  CHECK(state_error_of([&] { a.send(1); }).find("moved-from") != std::string::npos);
  CHECK(state_error_of([&] { (void)a.recv(); }).find("moved-from") != std::string::npos);
  CHECK(state_error_of([&] { (void)a.poll(); }).find("moved-from") != std::string::npos);
  c.send(1);
  CHECK(b.recv() == 1);
  c.close();
  CHECK(state_error_of([&] { c.send(1); }).find("closed") != std::string::npos);
}

TEST_CASE_TEMPLATE("Queue.Pipe.NegativePollTimeoutDoesNotWait", B, Processes, Threads) {
  // CPython's poll(-1) returns at once, as poll(0).
  auto [a, b] = B::template Pipe<int>();
  CHECK_FALSE(a.poll(-1s));
  CHECK_FALSE(a.poll(std::chrono::hours::min()));
  b.send(1);
  CHECK(a.poll(-1s));
  CHECK(a.poll(std::chrono::hours::max()));
}

TEST_CASE("Queue.Pipe.NoShmLeftovers") { CHECK(testing::procpool_shm_entries().empty()); }
