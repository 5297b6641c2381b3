// Pipe and Connection on both backends: duplex and one-way ends, poll with timeouts, EOF
// after the peer closes, BrokenPipeError, large items, and ends passed to spawned children.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <procpool/procpool.hpp>

#include "queue_support.hpp"
#include "run_program.hpp"

using namespace std::chrono_literals;
using qtest::ProcessBackend;
using qtest::ThreadBackend;

namespace {

template <class T, class B>
auto make_pipe(bool duplex = true, procpool::QueueOptions options = {}) {
  return procpool::detail::make_pipe<T, B>(duplex, options);
}

void child_doubles(procpool::Connection<int>& conn) {
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

} // namespace

TEST_CASE_TEMPLATE("Queue.Pipe.DuplexBothWays", B, ProcessBackend, ThreadBackend) {
  auto [a, b] = make_pipe<std::string, B>();
  CHECK(a.readable());
  CHECK(a.writable());
  qtest::Workers<B> w;
  w.spawn([&b] {
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

TEST_CASE_TEMPLATE("Queue.Pipe.OneWayEnds", B, ProcessBackend, ThreadBackend) {
  auto [r, s] = make_pipe<int, B>(false);
  CHECK(r.readable());
  CHECK_FALSE(r.writable());
  CHECK(s.writable());
  CHECK_FALSE(s.readable());
  CHECK_THROWS_AS(r.send(1), procpool::StateError);
  CHECK_THROWS_AS((void)s.recv(), procpool::StateError);
  s.send(5);
  CHECK(r.recv() == 5);
}

TEST_CASE_TEMPLATE("Queue.Pipe.PollHonoursTimeouts", B, ProcessBackend, ThreadBackend) {
  auto [a, b] = make_pipe<int, B>();
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

TEST_CASE_TEMPLATE("Queue.Pipe.EofOnlyAfterDrainingAndBrokenPipe", B, ProcessBackend, ThreadBackend) {
  auto [a, b] = make_pipe<int, B>();
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

TEST_CASE_TEMPLATE("Queue.Pipe.BlockedRecvWakesOnClose", B, ProcessBackend, ThreadBackend) {
  auto [a, b] = make_pipe<int, B>();
  std::thread closer([&b] {
    std::this_thread::sleep_for(50ms);
    b.close();
  });
  CHECK_THROWS_AS((void)a.recv(), procpool::EOFError);
  closer.join();
}

TEST_CASE_TEMPLATE("Queue.Pipe.LargeItemsAndTuples", B, ProcessBackend, ThreadBackend) {
  using Msg = std::tuple<int, std::optional<int>, std::string>;
  auto [a, b] = make_pipe<Msg, B>();
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
                        std::ref(child));
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

TEST_CASE("Queue.Pipe.NoShmLeftovers") { CHECK(testing::procpool_shm_entries().empty()); }
