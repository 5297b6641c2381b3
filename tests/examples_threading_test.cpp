// Runs the threading examples (the seeds' C++ twins) and checks their output. Output from
// threads that run side by side is checked as a set of lines, or by pattern where random.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "run_program.hpp"

namespace {

// ThreadSanitizer sleeps 1 s before a process exits (atexit_sleep_ms), which in a TSan build
// lets the daemon examples' threads wake from their nap before the process dies: turn it off
// for the examples this test runs (they inherit the environment).
const bool tsan_exit_sleep_off = [] {
  const char* old = std::getenv("TSAN_OPTIONS");
  const std::string options = std::string(old != nullptr ? old : "") + (old != nullptr && *old ? ":" : "") +
                              "atexit_sleep_ms=0";
  return ::setenv("TSAN_OPTIONS", options.c_str(), 1) == 0;
}();

testing::ProgramResult run_example(const std::string& name) {
  REQUIRE(tsan_exit_sleep_off);
  auto r = testing::run_program({testing::example_path(name)});
  INFO(name, " stderr: ", r.err);
  REQUIRE(r.exit_code == 0);
  return r;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::multiset<std::string> line_set(const std::string& text) {
  const auto lines = lines_of(text);
  return {lines.begin(), lines.end()};
}

// The number after `prefix` when the rest of `line` is all digits (no std::regex here: GCC 12
// warns inside <regex> in sanitizer builds).
std::optional<int> int_after(const std::string& line, const std::string& prefix) {
  if (line.rfind(prefix, 0) != 0 || line.size() == prefix.size() || line.size() - prefix.size() > 9) return {};
  const std::string digits = line.substr(prefix.size());
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) return {};
  return std::stoi(digits);
}

std::ptrdiff_t position(const std::vector<std::string>& lines, const std::string& line) {
  const auto it = std::find(lines.begin(), lines.end(), line);
  REQUIRE_MESSAGE(it != lines.end(), "missing line: ", line);
  return it - lines.begin();
}

} // namespace

TEST_CASE("Threading.Examples.Simple") {
  const auto r = run_example("threading_simple");
  CHECK(r.out == "Worker\nWorker\nWorker\nWorker\nWorker\n");  // joined at exit: all five
}

TEST_CASE("Threading.Examples.SimpleArgs") {
  const auto r = run_example("threading_simpleargs");
  CHECK(line_set(r.out) ==
        std::multiset<std::string>{"Worker: 0", "Worker: 1", "Worker: 2", "Worker: 3", "Worker: 4"});
}

TEST_CASE("Threading.Examples.Names") {
  const auto r = run_example("threading_names");
  const auto lines = lines_of(r.out);
  REQUIRE(lines.size() == 6);
  CHECK(line_set(r.out) == std::multiset<std::string>{"worker Starting", "Thread-1 Starting", "my_service Starting",
                                                      "worker Exiting", "Thread-1 Exiting", "my_service Exiting"});
  // The 3 s service outlasts the 2 s workers, and nothing exits before everything started.
  CHECK(lines.back() == "my_service Exiting");
  CHECK(position(lines, "worker Exiting") > position(lines, "my_service Starting"));
  CHECK(position(lines, "Thread-1 Exiting") > position(lines, "my_service Starting"));
}

TEST_CASE("Threading.Examples.NamesLog") {
  const auto r = run_example("threading_names_log");
  CHECK(r.out.empty());
  const auto lines = lines_of(r.err);  // the logger writes to stderr, as Python's logging
  REQUIRE(lines.size() == 6);
  CHECK(line_set(r.err) == std::multiset<std::string>{
                               "[debug] (worker    ) Starting", "[debug] (Thread-1  ) Starting",
                               "[debug] (my_service) Starting", "[debug] (worker    ) Exiting",
                               "[debug] (Thread-1  ) Exiting", "[debug] (my_service) Exiting"});
  CHECK(lines.back() == "[debug] (my_service) Exiting");
}

TEST_CASE("Threading.Examples.Daemon") {
  const auto r = run_example("threading_daemon");
  INFO("stdout: ", r.out);
  const auto lines = lines_of(r.out);
  // The daemon's "Exiting" never comes: the program does not wait for it. Even its "Starting"
  // may be lost when the program exits before the daemon gets to print it (as in Python).
  CHECK(position(lines, "Starting: non-daemon") < position(lines, "Exiting : non-daemon"));
  for (const auto& line : lines)
    CHECK((line == "Starting: daemon" || line == "Starting: non-daemon" || line == "Exiting : non-daemon"));
  CHECK(lines.size() == line_set(r.out).size());
  CHECK(std::set<std::string>(lines.begin(), lines.end()).size() == lines.size());  // no line twice
}

TEST_CASE("Threading.Examples.DaemonJoin") {
  const auto r = run_example("threading_daemon_join");
  const auto lines = lines_of(r.out);
  CHECK(line_set(r.out) == std::multiset<std::string>{"Starting: daemon", "Starting: non-daemon",
                                                      "Exiting : non-daemon", "Exiting : daemon"});
  REQUIRE(lines.size() == 4);
  CHECK(lines.back() == "Exiting : daemon");  // joined: its 2 s sleep ends last
}

TEST_CASE("Threading.Examples.DaemonJoinTimeout") {
  const auto r = run_example("threading_daemon_join_timeout");
  const auto lines = lines_of(r.out);
  CHECK(line_set(r.out) == std::multiset<std::string>{"Starting: daemon", "Starting: non-daemon",
                                                      "Exiting : non-daemon", "d.is_alive() true"});
  REQUIRE(lines.size() == 4);
  CHECK(lines.back() == "d.is_alive() true");
}

TEST_CASE("Threading.Examples.Enumerate") {
  const auto r = run_example("threading_enumerate");
  CHECK(testing::count_matching_lines(r.out, R"(^Starting: Thread-\d+ sleeping [1-5]$)") == 3);
  CHECK(testing::count_matching_lines(r.out, R"(^Joining : Thread-\d+$)") == 3);
  CHECK(testing::count_matching_lines(r.out, R"(^Ending : Thread-\d+$)") == 3);
  CHECK(lines_of(r.out).size() == 9);
  // Each thread's own lines come in order: it starts before it ends.
  const auto lines = lines_of(r.out);
  for (const auto& line : lines) {
    if (line.rfind("Ending : ", 0) != 0) continue;
    const std::string name = line.substr(9);
    const auto start = std::find_if(lines.begin(), lines.end(),
                                    [&](const std::string& l) { return l.rfind("Starting: " + name + " ", 0) == 0; });
    CHECK(start - lines.begin() < position(lines, line));
  }
}

TEST_CASE("Threading.Examples.Subclass") {
  const auto r = run_example("threading_subclass");
  const auto lines = lines_of(r.out);
  REQUIRE(lines.size() == 5);
  std::set<int> numbers;
  for (const auto& line : lines) {
    const auto n = int_after(line, "MyThread: Thread-");
    REQUIRE_MESSAGE(n.has_value(), line);
    numbers.insert(*n);
  }
  CHECK(numbers == std::set<int>{1, 2, 3, 4, 5});
}

TEST_CASE("Threading.Examples.Timer") {
  const auto r = run_example("threading_timer");
  // t2 never runs; t1 runs after main() is done (joined at exit).
  CHECK(r.out == "Starting timers\nWaiting before canceling t2\nCanceling t2\nMain thread done\nWorker running t1\n");
}

TEST_CASE("Threading.Examples.Local") {
  const auto r = run_example("threading_local");
  const auto lines = lines_of(r.out);
  REQUIRE(lines.size() == 6);
  CHECK(lines[0] == "MainThread : value= No value yet");
  CHECK(lines[1] == "MainThread : value= 1000");
  for (const char* name : {"Thread-1", "Thread-2"}) {
    const std::string n = name;
    const auto first = position(lines, n + " : value= No value yet");
    const auto it = std::find_if(lines.begin(), lines.end(), [&](const std::string& l) {
      const auto v = int_after(l, n + " : value= ");
      return v && *v >= 1 && *v <= 100;
    });
    REQUIRE(it != lines.end());
    CHECK(first < it - lines.begin());
  }
}

TEST_CASE("Threading.Examples.LocalDefaults") {
  const auto r = run_example("threading_local_defaults");
  const auto lines = lines_of(r.out);
  REQUIRE(lines.size() == 8);
  std::set<std::string> ids;
  for (const std::string name : {"MainThread", "Thread-1", "Thread-2"}) {
    // "(Initializing 0x... for NAME)": the same object's address, once per thread.
    const std::string tail = " for " + name + ")";
    int found = 0;
    for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
      const std::string& l = lines[i];
      if (l.rfind("(Initializing 0x", 0) != 0 || l.size() <= tail.size() ||
          l.compare(l.size() - tail.size(), tail.size(), tail) != 0)
        continue;
      ++found;
      ids.insert(l.substr(14, l.size() - tail.size() - 14));
      CHECK(lines[i + 1] == name + " : value= 1000");  // the initial value follows
    }
    CHECK(found == 1);
  }
  CHECK(ids.size() == 1);  // the same local object every time
  CHECK(testing::count_matching_lines(r.out, R"(^Thread-[12] : value= ([1-9]\d?|100)$)") == 2);
}

TEST_CASE("Threading.Examples.SummingThread") {
  const auto r = run_example("summing_thread");
  CHECK(r.out == "499999500000\n");
}
