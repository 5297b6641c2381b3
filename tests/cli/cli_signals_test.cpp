// procpool run: --timeout kills whole process groups; Ctrl-C/SIGTERM then --resume; SIGKILL of
// procpool leaves no orphans and only whole joblog lines.
#include "cli_helpers.hpp"

#include <algorithm>
#include <iterator>

using namespace clitest;

namespace {

std::vector<pid_t> read_pids(const TempDir& dir, const std::string& prefix) {
  std::vector<pid_t> pids;
  for (const auto& entry : fs::directory_iterator(dir.path)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string text = read_file(entry.path().string());
    if (!text.empty()) pids.push_back(std::stoi(text));
  }
  return pids;
}

std::set<long> numbers_in(const std::string& text) {
  std::set<long> numbers;
  for (const auto& line : lines_of(text)) numbers.insert(std::stol(line));
  return numbers;
}

} // namespace

TEST_CASE("Cli.Timeout.KillsGrandchildren") {
  TempDir dir;
  // The job starts a grandchild, and a great-grandchild that ignores TERM.
  write_file(dir / "job.sh",
             "sleep 60 & echo $! > gc.$1\n"
             "sh -c 'trap \"\" TERM; echo $$ > ggc.'$1'; sleep 60; sleep 60' &\n"
             "wait\n");
  const auto r = sh(dir, "$P run --timeout 1 --grace 0.5 --joblog log.tsv sh job.sh ::: 1");
  CHECK(r.exit_code == 1);
  CHECK(r.elapsed < std::chrono::seconds(10));
  const auto rows = joblog_rows(dir / "log.tsv");
  REQUIRE(rows.size() == 1);
  CHECK(rows[0][6] == "-1");  // Exitval -1 for a timeout, as GNU parallel
  CHECK(rows[0][7] == "15");
  CHECK(r.err.find("timed out") != std::string::npos);
  auto pids = read_pids(dir, "gc.");
  const auto more = read_pids(dir, "ggc.");
  pids.insert(pids.end(), more.begin(), more.end());
  REQUIRE(pids.size() == 2);
  for (const pid_t pid : pids)
    CHECK_MESSAGE(eventually([&] { return !process_alive(pid); }, 5000ms), "pid ", pid, " survived the timeout");
}

TEST_CASE("Cli.Timeout.SuffixesAndPercent") {
  TempDir dir;
  auto r = sh(dir, "$P run --timeout 0.02m 'sleep {}' ::: 0.1 30");  // 1.2 s
  CHECK(r.exit_code == 1);
  CHECK(r.elapsed < std::chrono::seconds(15));
  // 300% of the median of the successful runtimes (about 0.2 s): the 30 s job is killed.
  r = sh(dir, "$P run -j1 --timeout 300% --joblog log.tsv 'sleep {}' ::: 0.2 0.2 0.2 30");
  CHECK(r.exit_code == 1);
  CHECK(r.elapsed < std::chrono::seconds(15));
  const auto rows = joblog_rows(dir / "log.tsv");
  REQUIRE(rows.size() == 4);
  CHECK(rows[3][6] == "-1");
}

TEST_CASE("Cli.Signals.InterruptThenResumeRunsExactlyTheRest") {
  for (const int sig : {SIGINT, SIGTERM}) {
    TempDir dir;
    std::string batch;
    for (int i = 1; i <= 24; ++i) batch += "sleep 0.25; echo " + std::to_string(i) + "\n";
    write_file(dir / "b.txt", batch);
    Background bg(dir, {"run", "-j2", "--joblog", "log.tsv", "b.txt"}, "first.out");
    REQUIRE(eventually([&] { return joblog_seqs(dir / "log.tsv").size() >= 3; }));
    ::kill(bg.pid, sig);
    CHECK(bg.wait() == 255);
    const auto first_logged = joblog_seqs(dir / "log.tsv");
    const auto first_out = numbers_in(read_file(dir / "first.out"));
    CHECK(first_out == first_logged);  // printed exactly what was logged: nothing half-done
    CHECK(first_logged.size() < 24);
    const auto r = sh(dir, "$P run -j2 --joblog log.tsv --resume b.txt");
    CHECK(r.exit_code == 0);
    const auto second_out = numbers_in(r.out);
    std::set<long> overlap;
    std::set_intersection(first_out.begin(), first_out.end(), second_out.begin(), second_out.end(),
                          std::inserter(overlap, overlap.begin()));
    CHECK(overlap.empty());
    CHECK(first_out.size() + second_out.size() == 24);
    CHECK(joblog_rows(dir / "log.tsv").size() == 24);
  }
}

TEST_CASE("Cli.Signals.InterruptKillsRunningGroups") {
  TempDir dir;
  Background bg(dir, {"run", "-j2", "--grace", "0.5", "sh -c 'sleep 60 & echo $! > gc.{#}; wait'", ":::", "1", "2"});
  REQUIRE(eventually([&] { return read_pids(dir, "gc.").size() == 2; }));
  const auto pids = read_pids(dir, "gc.");
  ::kill(bg.pid, SIGINT);
  CHECK(bg.wait() == 255);
  for (const pid_t pid : pids) CHECK(eventually([&] { return !process_alive(pid); }, 5000ms));
}

TEST_CASE("Cli.Signals.SigkillLeavesNoOrphansAndWholeJoblogLines") {
  TempDir dir;
  std::string batch;
  for (int i = 1; i <= 4; ++i)  // long jobs with grandchildren...
    batch += "sh -c 'sleep 60 & echo $! > gc." + std::to_string(i) + "; wait'\n";
  for (int i = 5; i <= 3000; ++i) batch += "echo " + std::to_string(i) + "\n";  // ...among many short ones
  write_file(dir / "b.txt", batch);
  // Long jobs first, with -j6 so that short jobs stream through the joblog meanwhile.
  Background bg(dir, {"run", "-j6", "--joblog", "log.tsv", "b.txt"});
  REQUIRE(eventually([&] { return read_pids(dir, "gc.").size() == 4; }));
  REQUIRE(eventually([&] { return joblog_rows(dir / "log.tsv").size() > 50; }));
  ::kill(bg.pid, SIGKILL);
  CHECK(bg.wait() == -SIGKILL);
  for (const pid_t pid : read_pids(dir, "gc."))
    CHECK_MESSAGE(eventually([&] { return !process_alive(pid); }, 5000ms), "grandchild ", pid, " outlived procpool");
  const std::string log = read_file(dir / "log.tsv");
  REQUIRE(!log.empty());
  CHECK(log.back() == '\n');
  for (const auto& row : joblog_rows(dir / "log.tsv")) CHECK(row.size() == 9);
  // The resumed run does the rest; the four long jobs run again (they were not finished).
  const auto logged = joblog_seqs(dir / "log.tsv");
  CHECK(logged.count(1) == 0);
  write_file(dir / "b.txt", [&] {
    std::string quick;
    for (int i = 1; i <= 4; ++i) quick += "echo " + std::to_string(i) + "\n";
    return quick + batch.substr(batch.find("echo 5\n"));
  }());
  const auto r = sh(dir, "$P run -j2 --joblog log.tsv --resume b.txt");
  CHECK(r.exit_code == 0);
  CHECK(lines_of(r.out).size() == 3000 - logged.size());
  CHECK(joblog_seqs(dir / "log.tsv").size() == 3000);
}
