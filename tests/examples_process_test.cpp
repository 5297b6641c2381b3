#include <doctest/doctest.h>

#include <string>

#include "run_program.hpp"

using testing::count_matching_lines;
using testing::example_path;
using testing::run_program;

TEST_CASE("Examples.ProcessInfo.AllStartMethods") {
  for (const std::string method : {"fork", "spawn", "forkserver"}) {
    CAPTURE(method);
    const auto r = run_program({example_path("process_info"), method});
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(count_matching_lines(r.out, "^main line$") == 1);
    CHECK(count_matching_lines(r.out, "^function f$") == 1);
    CHECK(count_matching_lines(r.out, "^hello bob$") == 1);
    CHECK(count_matching_lines(r.out, "^process name: MainProcess$") == 1);
    CHECK(count_matching_lines(r.out, "^process name: Process-1$") == 1);
    CHECK(count_matching_lines(r.out, "^parent process: [0-9]+$") == 2);
    CHECK(count_matching_lines(r.out, "^process id: [0-9]+$") == 2);
    // The child's parent pid is the main process's pid (fork, spawn) or the forkserver's.
    const auto main_pid_at = r.out.find("process id: ");
    REQUIRE(main_pid_at != std::string::npos);
    const auto main_pid = r.out.substr(main_pid_at + 12, r.out.find('\n', main_pid_at) - main_pid_at - 12);
    const auto child_block = r.out.substr(r.out.find("function f"));
    if (method != "forkserver") CHECK(child_block.find("parent process: " + main_pid + "\n") != std::string::npos);
  }
}

TEST_CASE("Examples.ProcessSubclass.Output") {
  const auto r = run_program({example_path("process_subclass"), "0.2"});
  CHECK(r.exit_code == 0);
  CHECK(count_matching_lines(r.out, "^Parent process \\([0-9]+\\) start$") == 1);
  CHECK(count_matching_lines(r.out, "^Child process \\([0-9]+\\) started, parent [0-9]+, name mrsoft$") == 1);
  CHECK(count_matching_lines(r.out, "^Child process \\([0-9]+\\) started, parent [0-9]+, name Process-2$") == 1);
  CHECK(count_matching_lines(r.out, "^p1.name = mrsoft, p1.pid = [0-9]+$") == 1);
  CHECK(count_matching_lines(r.out, "^Child process \\([0-9]+\\) finished in 0\\.[2-9][0-9] s$") >= 1);
  CHECK(count_matching_lines(r.out, "^Child process \\([0-9]+\\) finished in [0-9.]+ s$") == 2);
  CHECK(count_matching_lines(r.out, "^Parent process end, exit codes 0 0$") == 1);
}

TEST_CASE("Examples.ProcessHello.ChildJoinedAtExit") {
  for (const std::string method : {"fork", "spawn", "forkserver"}) {
    CAPTURE(method);
    const auto r = run_program({example_path("process_hello"), method});
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("Main process start\n") == 0);
    CHECK(count_matching_lines(r.out, "^End of main process$") == 1);
    CHECK(count_matching_lines(r.out, "^I am a subprocess \\(Process-1\\)$") == 1);
  }
}
