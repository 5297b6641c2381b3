// Runs the sync examples (the seeds' C++ twins) on threads and on processes, and checks
// their output.
#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

#include "run_program.hpp"

using testing::count_matching_lines;
using testing::example_path;
using testing::run_program;

namespace {
// Every mode an example supports; examples whose workers take plain C++ objects (a Counter,
// an ActivePool) need fork or threads.
const std::vector<std::string> kAllModes{"threads", "fork", "spawn", "forkserver"};
const std::vector<std::string> kForkModes{"threads", "fork"};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    const auto end = text.find('\n', start);
    lines.push_back(text.substr(start, end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return lines;
}
} // namespace

TEST_CASE("Examples.Sync.ThreadingEvent") {
  for (const auto& mode : kAllModes) {
    CAPTURE(mode);
    const auto r = run_program({example_path("threading_event"), mode, "0.1"});
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(count_matching_lines(r.out, R"(^\(block     \) wait_for_event starting$)") == 1);
    CHECK(count_matching_lines(r.out, R"(^\(non-block \) wait_for_event_timeout starting$)") == 1);
    // The non-blocking waiter times out first (0.2 s) and sees False; the blocked one sees
    // True once the main thread sets the event (0.3 s).
    const auto lines = lines_of(r.out);
    std::vector<std::string> results;
    for (const auto& l : lines)
      if (l.find("is_set()") != std::string::npos || l.find("Event is set") != std::string::npos) results.push_back(l);
    REQUIRE(results.size() == 3);
    CHECK(results[0] == "(non-block ) e.is_set()->False");
    // The woken worker may print before the main thread's own line.
    const std::string main_line = mode == "threads" ? "(MainThread) Event is set" : "(MainProcess) Event is set";
    CHECK(std::set<std::string>{results[1], results[2]} ==
          std::set<std::string>{main_line, "(block     ) e.is_set()->True"});
  }
}

TEST_CASE("Examples.Sync.ThreadingLock") {
  for (const auto& mode : kForkModes) {
    CAPTURE(mode);
    const auto r = run_program({example_path("threading_lock"), mode, "0.02"});
    CHECK(r.exit_code == 0);
    CHECK(count_matching_lines(r.out, R"(^\((Thread|Process)-[1-5] *\) Acquired lock$)") == 15);
    CHECK(count_matching_lines(r.out, R"(^\((Thread|Process)-[1-5] *\) Sleeping 0\.[0-9][0-9]$|^\(\w+-[1-5] *\) Sleeping 1\.00$)") == 15);
    CHECK(count_matching_lines(r.out, R"(^\((Thread|Process)-[1-5] *\) Done$)") == 5);
    CHECK(count_matching_lines(r.out, R"(^\((MainThread|MainProcess)\) Counter: 15$)") == 1);
  }
}

TEST_CASE("Examples.Sync.ThreadingLockNoblock") {
  for (const auto& mode : kAllModes) {
    CAPTURE(mode);
    const auto r = run_program({example_path("threading_lock_noblock"), mode, "0.02"});
    CHECK(r.exit_code == 0);
    CHECK(count_matching_lines(r.out, R"(^\(\w+-[1-3] *\) Starting$)") == 3);
    CHECK(count_matching_lines(r.out, R"(^\(\w+-[1-3] *\) Iteration [0-9]+: Acquired$)") == 9);
    CHECK(count_matching_lines(r.out, R"(^\(\w+-[1-3] *\) Done after [0-9]+ iterations$)") == 3);
    // Each worker's attempt count is its "Acquired" plus "Not acquired" lines.
    const int attempts = count_matching_lines(r.out, R"(^\(\w+-[1-3] *\) Iteration [0-9]+: (Not acquired|Acquired)$)");
    int reported = 0;
    // (No std::regex here: GCC 12 warns inside it in sanitizer builds.)
    const std::string marker = "Done after ";
    for (const auto& l : lines_of(r.out))
      if (const auto at = l.find(marker); at != std::string::npos) reported += std::stoi(l.substr(at + marker.size()));
    CHECK(reported == attempts);
  }
}

TEST_CASE("Examples.Sync.LockReacquireAndRLock") {
  for (const std::string mode : {"threads", "processes"}) {
    CAPTURE(mode);
    const auto lock = run_program({example_path("threading_lock_reacquire"), mode});
    CHECK(lock.exit_code == 0);
    CHECK(lock.out == "First try: True\nSecond try: False\n");
    const auto rlock = run_program({example_path("threading_rlock"), mode});
    CHECK(rlock.exit_code == 0);
    CHECK(rlock.out == "First try: True\nSecond try: True\n");
  }
}

TEST_CASE("Examples.Sync.ThreadingLockWith") {
  for (const auto& mode : kAllModes) {
    CAPTURE(mode);
    const auto r = run_program({example_path("threading_lock_with"), mode});
    CHECK(r.exit_code == 0);
    CHECK(count_matching_lines(r.out, "^Lock acquired via with$") == 1);
    CHECK(count_matching_lines(r.out, "^Lock acquired directly$") == 1);
    CHECK(lines_of(r.out).size() == 2);
  }
}

TEST_CASE("Examples.Sync.ThreadingCondition") {
  for (const auto& mode : kAllModes) {
    CAPTURE(mode);
    const auto r = run_program({example_path("threading_condition"), mode, "0.05"});
    CHECK(r.exit_code == 0);
    const auto lines = lines_of(r.out);
    REQUIRE(lines.size() == 6);
    CHECK(lines[0] == "(c1) Starting consumer thread");
    CHECK(lines[1] == "(c2) Starting consumer thread");
    CHECK(lines[2] == "(p ) Starting producer thread");
    CHECK(lines[3] == "(p ) Making resource available");
    const std::set<std::string> last{lines[4], lines[5]};
    CHECK(last == std::set<std::string>{"(c1) Resource is available to consumer", "(c2) Resource is available to consumer"});
  }
}

TEST_CASE("Examples.Sync.ThreadingSemaphore") {
  for (const auto& mode : kForkModes) {
    CAPTURE(mode);
    const auto r = run_program({example_path("threading_semaphore"), mode, "0.05"});
    CHECK(r.exit_code == 0);
    CHECK(count_matching_lines(r.out, R"(^\([0-9 ]{2}\) Running: \[.*\]$)") == 20);
    // Never more than five names in the active list.
    CHECK(count_matching_lines(r.out, R"(^.*Running: \[('[0-9]+', ){5,}'[0-9]+'\]$)") == 0);
    CHECK(count_matching_lines(r.out, R"(^Max active: [1-5] \(limit 5\)$)") == 1);
  }
}

TEST_CASE("Examples.Sync.ProcessValueArray") {
  for (const auto& mode : kAllModes) {
    CAPTURE(mode);
    const auto r = run_program({example_path("process_value_array"), mode});
    CHECK(r.exit_code == 0);
    CHECK(r.out == "3.1415927\n[0, -1, -2, -3, -4, -5, -6, -7, -8, -9]\n");
  }
}

TEST_CASE("Examples.Sync.ProcessLock") {
  for (const auto& mode : kAllModes) {
    CAPTURE(mode);
    const auto r = run_program({example_path("process_lock"), mode});
    CHECK(r.exit_code == 0);
    for (int i = 0; i < 10; ++i) CHECK(count_matching_lines(r.out, "^hello world " + std::to_string(i) + "$") == 1);
    CHECK(lines_of(r.out).size() == 10);
  }
}

TEST_CASE("Examples.Sync.NoDevShmLeftovers") {
  CHECK(testing::procpool_shm_entries().empty());
}
