// procpool run: output grouping and ordering, pacing and throttling options.
#include "cli_helpers.hpp"

#include <algorithm>
#include <map>

using namespace clitest;

namespace {

// Noisy jobs: each prints 300 lines in bursts with pauses, on stdout and stderr, while others do too.
const std::string noisy_job =
    "'for i in $(seq 1 300); do echo \"job{} line $i\"; echo \"job{} err $i\" >&2; "
    "case $i in *0) sleep 0.01;; esac; done'";

// True when each job's lines form one contiguous block in `text`.
bool contiguous_blocks(const std::string& text, int jobs, int lines_per_job) {
  std::map<std::string, int> seen_blocks;
  std::string previous;
  int total = 0;
  for (const auto& line : lines_of(text)) {
    const std::string job = line.substr(0, line.find(' '));
    if (job != previous) ++seen_blocks[job];
    previous = job;
    ++total;
  }
  if (total != jobs * lines_per_job || static_cast<int>(seen_blocks.size()) != jobs) return false;
  for (const auto& [job, blocks] : seen_blocks)
    if (blocks != 1) return false;
  return true;
}

} // namespace

TEST_CASE("Cli.Output.GroupNeverInterleaves") {
  TempDir dir;
  const auto r = sh(dir, "$P run -j4 " + noisy_job + " ::: 1 2 3 4 5 6");
  CHECK(r.exit_code == 0);
  CHECK(contiguous_blocks(r.out, 6, 300));
  CHECK(contiguous_blocks(r.err, 6, 300));
  // Proof that the jobs really overlap: ungrouped, their lines do interleave.
  const auto u = sh(dir, "$P run -j4 -u " + noisy_job + " ::: 1 2 3 4 5 6");
  CHECK(!contiguous_blocks(u.out, 6, 300));
}

TEST_CASE("Cli.Output.LineBufferKeepsLinesWhole") {
  TempDir dir;
  const auto r = sh(dir, "$P run -j4 --line-buffer --tag " + noisy_job + " ::: 1 2 3");
  CHECK(r.exit_code == 0);
  CHECK(testing::count_matching_lines(r.out, "^([123])\tjob\\1 line [0-9]+$") == 900);
  CHECK(testing::count_matching_lines(r.err, "^([123])\tjob\\1 err [0-9]+$") == 900);
}

TEST_CASE("Cli.Output.LineBufferStreamsBeforeTheJobEnds") {
  TempDir dir;
  const auto r = sh(dir, "$P run --lb 'echo first; sleep 2; echo second; : {}' ::: x | "
                         "{ read line; date +%s.%N; echo \"$line\"; cat; date +%s.%N; }");
  const auto lines = lines_of(r.out);
  REQUIRE(lines.size() == 4);
  CHECK(lines[1] == "first");
  CHECK(lines[2] == "second");
  CHECK(std::stod(lines[3]) - std::stod(lines[0]) > 1.0);  // "first" came well before the end
}

TEST_CASE("Cli.Output.KeepOrder") {
  TempDir dir;
  const auto r = sh(dir, "$P run -j4 -k 'sleep 0.$((5 - {})); echo {}; echo e{} >&2' ::: 1 2 3 4");
  CHECK(r.out == "1\n2\n3\n4\n");
  CHECK(r.err == "e1\ne2\ne3\ne4\n");
  const auto unordered = sh(dir, "$P run -j4 'sleep 0.$((5 - {}))0; echo {}' ::: 1 2 3 4");
  CHECK(unordered.out == "4\n3\n2\n1\n");  // sleeps of 0.4..0.1 s: finish order is reversed
  const auto lb = sh(dir, "$P run -j4 -k --lb 'sleep 0.$((5 - {})); echo {}' ::: 1 2 3 4");
  CHECK(lb.out == "1\n2\n3\n4\n");
}

TEST_CASE("Cli.Output.StdoutClosedByReader") {
  TempDir dir;
  std::string batch;
  for (int i = 0; i < 2000; ++i) batch += "echo " + std::to_string(i) + "\n";
  write_file(dir / "b.txt", batch);
  const auto r = sh(dir, "$P run -j2 b.txt | head -n 3; echo rc=$?");
  CHECK(r.out.find("rc=0") != std::string::npos);
  CHECK(lines_of(r.out).size() == 4);
  CHECK(r.elapsed < std::chrono::seconds(30));
}

TEST_CASE("Cli.Throttle.Delay") {
  TempDir dir;
  const auto r = sh(dir, "$P run -j4 --delay 0.3 'date +%s.%N; : {}' ::: 1 2 3 4");
  CHECK(r.exit_code == 0);
  std::vector<double> starts;
  for (const auto& line : lines_of(r.out)) starts.push_back(std::stod(line));
  REQUIRE(starts.size() == 4);
  std::sort(starts.begin(), starts.end());
  CHECK(starts.back() - starts.front() >= 0.85);  // 3 gaps of at least 0.3 s
}

TEST_CASE("Cli.Throttle.MemfreeAndLoad") {
  TempDir dir;
  // Enough memory: runs. More than any machine has: waits (and is stopped by a SIGTERM).
  auto r = sh(dir, "$P run --memfree 1M echo ::: ok");
  CHECK(r.out == "ok\n");
  Background bg(dir, {"run", "--memfree", "1P", "--joblog", "log.tsv", "touch ran", ":::", "x"});
  std::this_thread::sleep_for(800ms);
  CHECK(!fs::exists(dir / "ran"));
  ::kill(bg.pid, SIGTERM);
  CHECK(bg.wait() == 255);
  CHECK(joblog_rows(dir / "log.tsv").empty());
  r = sh(dir, "$P run --load 1000 echo ::: ok");
  CHECK(r.out == "ok\n");
  r = sh(dir, "$P run --load 1000% echo ::: ok");
  CHECK(r.out == "ok\n");
}
