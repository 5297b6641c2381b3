#include <doctest/doctest.h>

#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "run_program.hpp"

using testing::count_matching_lines;
using testing::example_path;
using testing::run_program;

namespace {
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}
} // namespace

TEST_CASE("Examples.PoolDemo.Output") {
  const auto r = run_program({example_path("pool_demo")});
  CHECK(r.exit_code == 0);
  const auto lines = lines_of(r.out);
  REQUIRE(lines.size() == 17);
  CHECK(lines[0] == "[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]");
  std::multiset<std::string> squares(lines.begin() + 1, lines.begin() + 11);
  CHECK(squares == std::multiset<std::string>{"0", "1", "4", "9", "16", "25", "36", "49", "64", "81"});
  CHECK(lines[11] == "400");
  CHECK(std::stoi(lines[12]) != static_cast<int>(::getpid()));
  CHECK(count_matching_lines(lines[13], "^\\[[0-9]+, [0-9]+, [0-9]+, [0-9]+\\]$") == 1);
  CHECK(lines[14] == "We lacked patience and got a procpool::TimeoutError");
  CHECK(lines[15] == "For the moment, the pool remains available for more work");
  CHECK(lines[16] == "Now the pool is closed and no longer available");
  CHECK(r.elapsed.count() < 8000);  // the 10 s task was terminated, not waited for
}

TEST_CASE("Examples.PoolTasks.TenTasksThreeWorkers") {
  const auto r = run_program({example_path("pool_tasks"), "0.1"});
  CHECK(r.exit_code == 0);
  CHECK(count_matching_lines(r.out, "^Subprocess [0-9]+ implement task [0-9]$") == 10);
  for (int i = 0; i < 10; ++i) CHECK(count_matching_lines(r.out, "implement task " + std::to_string(i) + "$") == 1);
  std::set<std::string> pids;
  for (const auto& line : lines_of(r.out))
    if (line.rfind("Subprocess ", 0) == 0) pids.insert(line.substr(11, line.find(' ', 11) - 11));
  CHECK(pids.size() >= 2);
  CHECK(pids.size() <= 3);
  CHECK(lines_of(r.out).back() == "All subprocesses done");
}

TEST_CASE("Examples.SummingPool.Total") {
  const auto r = run_program({example_path("summing_pool")});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "499999500000\n");
}

TEST_CASE("Examples.PoolSwap.SameProgramBothBackends") {
  const auto threads = run_program({example_path("pool_swap_thread")});
  const auto processes = run_program({example_path("pool_swap_process")});
  for (const auto* r : {&threads, &processes}) {
    CHECK(r->exit_code == 0);
    CHECK(count_matching_lines(r->out, "^[0-4] \\(pid [0-9]+\\)$") == 5);
    CHECK(count_matching_lines(r->out, "^total 100$") == 1);
  }
  // Threads run in the program's own process; processes in workers with other pids.
  std::set<std::string> thread_pids, process_pids;
  for (const auto& line : lines_of(threads.out))
    if (line.find("(pid ") != std::string::npos) thread_pids.insert(line.substr(line.find("(pid ")));
  for (const auto& line : lines_of(processes.out))
    if (line.find("(pid ") != std::string::npos) process_pids.insert(line.substr(line.find("(pid ")));
  CHECK(thread_pids.size() == 1);
  CHECK(process_pids.size() >= 2);
}
