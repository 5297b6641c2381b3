// Runs the queue and pipe examples (the seeds' C++ twins) and checks their output.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "run_program.hpp"

using namespace std::chrono_literals;
using testing::count_matching_lines;
using testing::example_path;
using testing::run_program;

TEST_CASE("Examples.QueueFull.FourthPutTimesOutThenDrains") {
  const auto r = run_program({example_path("queue_full")});
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  CHECK(r.out == "Queue Full,count:3\nmessage1\nmessage2\nmessage3\nafter put_nowait, count:1\n");
  CHECK(r.elapsed >= 1900ms);  // the fourth put waited its 2 s
}

TEST_CASE("Examples.QueueWriteRead.AllStartMethods") {
  for (const std::string method : {"fork", "spawn", "forkserver"}) {
    CAPTURE(method);
    const auto r = run_program({example_path("queue_write_read"), method});
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(r.out == "msg0\nmsg1\nmsg2\nmsg3\nmsg4\n");
  }
}

TEST_CASE("Examples.QueueChildPut.AllStartMethods") {
  for (const std::string method : {"fork", "spawn", "forkserver"}) {
    CAPTURE(method);
    const auto r = run_program({example_path("queue_child_put"), method});
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(r.out == "[42, None, 'hello']\n");
  }
}

TEST_CASE("Examples.PipeSendRecv.AllStartMethods") {
  for (const std::string method : {"fork", "spawn", "forkserver"}) {
    CAPTURE(method);
    const auto r = run_program({example_path("pipe_send_recv"), method});
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(r.out == "[42, None, 'hello']\nEOFError: the child closed its end\n");
  }
}

TEST_CASE("Examples.QueueProducerConsumer.FiveEachInOrder") {
  const auto r = run_program({example_path("queue_producer_consumer"), "0.02"});
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  CHECK(count_matching_lines(r.out, "^Producer, [0-4]$") == 5);
  CHECK(count_matching_lines(r.out, "^Consumer, [0-4]$") == 5);
  // The consumer gets the values in the order they were put, each after its put.
  std::size_t last = 0;
  for (int i = 0; i < 5; ++i) {
    const auto put = r.out.find("Producer, " + std::to_string(i) + "\n");
    const auto got = r.out.find("Consumer, " + std::to_string(i) + "\n");
    REQUIRE(put != std::string::npos);
    REQUIRE(got != std::string::npos);
    CHECK(put < got);
    CHECK(got >= last);
    last = got;
  }
}

TEST_CASE("Examples.ThreadedWorker.PreservesResultOrdering") {
  for (int run = 0; run < 3; ++run) {
    const auto r = run_program({example_path("threaded_worker"), "ordered"});
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(r.out == "['http://url1.com', 'http://url2.com', 'http://site1.com', 'http://site2.com']\n");
  }
  const auto r = run_program({example_path("threaded_worker"), "unordered"});
  CHECK(r.exit_code == 0);
  for (const char* url : {"'http://url1.com'", "'http://url2.com'", "'http://site1.com'", "'http://site2.com'"})
    CHECK(r.out.find(url) != std::string::npos);
}
