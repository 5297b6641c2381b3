// procpool run: the joblog format, --resume/--resume-failed (also with GNU parallel's joblogs),
// exit statuses, --retries and --halt.
#include "cli_helpers.hpp"

#include <regex>

using namespace clitest;

TEST_CASE("Cli.Joblog.FormatFieldByField") {
  TempDir dir;
  write_file(dir / "b.txt", "echo hello\nprintf abc; exit 3\nkill -9 $$\n");
  const double before = static_cast<double>(std::time(nullptr));
  const auto r = sh(dir, "$P run -j1 --joblog log.tsv b.txt");
  CHECK(r.exit_code == 2);
  const auto text = read_file(dir / "log.tsv");
  const auto lines = lines_of(text);
  REQUIRE(lines.size() == 4);
  CHECK(lines[0] == "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand");
  const std::regex row(R"(^(\d+)\t:\t(\d+\.\d{3})\t( *\d+\.\d{3})\t0\t(\d+)\t(-?\d+)\t(\d+)\t(.*)$)");
  struct Expected { const char* seq; const char* receive; const char* exitval; const char* signal; const char* command; };
  const Expected expected[] = {{"1", "6", "0", "0", "echo hello"},
                               {"2", "3", "3", "0", "printf abc; exit 3"},
                               {"3", "0", "0", "9", "kill -9 $$"}};
  for (int i = 0; i < 3; ++i) {
    std::smatch m;
    REQUIRE_MESSAGE(std::regex_match(lines[static_cast<std::size_t>(i) + 1], m, row), lines[static_cast<std::size_t>(i) + 1]);
    CHECK(m[1] == expected[i].seq);
    const double start = std::stod(m[2]);
    CHECK(start >= before - 1);
    CHECK(start <= before + 60);
    CHECK(m[3].str().size() == 10);  // %10.3f, as GNU parallel
    CHECK(std::stod(m[3]) >= 0);
    CHECK(m[4] == expected[i].receive);
    CHECK(m[5] == expected[i].exitval);
    CHECK(m[6] == expected[i].signal);
    CHECK(m[7] == expected[i].command);
  }
}

TEST_CASE("Cli.Joblog.WrittenPerJobWhileRunning") {
  TempDir dir;
  write_file(dir / "b.txt", "echo fast\nsleep 3\n");
  Background bg(dir, {"run", "-j2", "--joblog", "log.tsv", "b.txt"});
  // The fast job's line is there long before the slow job ends.
  CHECK(eventually([&] { return joblog_seqs(dir / "log.tsv") == std::set<long>{1}; }, 2500ms));
  CHECK(bg.wait() == 0);
  CHECK(joblog_seqs(dir / "log.tsv") == std::set<long>{1, 2});
}

TEST_CASE("Cli.Joblog.ResumeAndResumeFailed") {
  TempDir dir;
  write_file(dir / "b.txt", "echo 1\nexit 4\necho 3\nexit 5\n");
  auto r = sh(dir, "$P run -j2 --joblog log.tsv b.txt");
  CHECK(r.exit_code == 2);
  r = sh(dir, "$P run -j2 --joblog log.tsv --resume b.txt");
  CHECK(r.exit_code == 0);
  CHECK(r.out.empty());  // everything was logged: nothing runs
  // The failed ones are fixed now; --resume-failed runs exactly those.
  write_file(dir / "b.txt", "echo 1\necho two\necho 3\necho four\n");
  r = sh(dir, "$P run -j1 --joblog log.tsv --resume-failed b.txt");
  CHECK(r.exit_code == 0);
  CHECK(r.out == "two\nfour\n");
  const auto rows = joblog_rows(dir / "log.tsv");
  REQUIRE(rows.size() == 6);  // appended, header kept once
  CHECK(read_file(dir / "log.tsv").rfind("Seq\t", 0) == 0);
  CHECK(rows[4][0] == "2");
  CHECK(rows[4][6] == "0");
  r = sh(dir, "$P run -j1 --joblog log.tsv --resume-failed b.txt");
  CHECK(r.out.empty());
  // Without --resume the joblog starts over.
  r = sh(dir, "$P run -j1 --joblog log.tsv b.txt");
  CHECK(joblog_rows(dir / "log.tsv").size() == 4);
}

TEST_CASE("Cli.Joblog.ResumeWithGnuParallel") {
  TempDir dir;
  std::string batch;
  for (int i = 1; i <= 10; ++i) batch += "echo job" + std::to_string(i) + "\n";
  write_file(dir / "b.txt", batch);
  // GNU parallel does the first half for real; procpool resumes its joblog and does the rest.
  auto r = sh(dir, "head -n 5 b.txt | parallel --will-cite -j2 --joblog gnu.tsv");
  REQUIRE_MESSAGE(r.exit_code == 0, "GNU parallel must be installed (scripts/install-deps.sh): ", r.err);
  CHECK(joblog_seqs(dir / "gnu.tsv") == std::set<long>{1, 2, 3, 4, 5});
  r = sh(dir, "$P run -j2 -k --joblog gnu.tsv --resume b.txt");
  CHECK(r.exit_code == 0);
  CHECK(r.out == "job6\njob7\njob8\njob9\njob10\n");
  CHECK(joblog_seqs(dir / "gnu.tsv").size() == 10);
  // And back: procpool's joblog, resumed by GNU parallel.
  r = sh(dir, "head -n 5 b.txt | $P run -j2 --joblog pp.tsv");
  CHECK(r.exit_code == 0);
  r = sh(dir, "parallel --will-cite -j2 -k --joblog pp.tsv --resume < b.txt");
  CHECK(r.exit_code == 0);
  CHECK(r.out == "job6\njob7\njob8\njob9\njob10\n");
}

TEST_CASE("Cli.Joblog.MalformedJoblogOnResume") {
  TempDir dir;
  write_file(dir / "b.txt", "echo a\n");
  write_file(dir / "log.tsv", "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\nnot a joblog line\n");
  const auto r = sh(dir, "$P run --joblog log.tsv --resume b.txt");
  CHECK(r.exit_code == 255);
  CHECK(r.err.find("line 2 is malformed") != std::string::npos);
  CHECK(r.out.empty());
}

TEST_CASE("Cli.Joblog.TornLastLineIsDropped") {
  TempDir dir;
  write_file(dir / "b.txt", "echo a\necho b\n");
  write_file(dir / "log.tsv",
             "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"
             "1\t:\t1700000000.000\t     0.001\t0\t2\t0\t0\techo a\n2\t:\t17000");
  const auto r = sh(dir, "$P run --joblog log.tsv --resume b.txt");
  CHECK(r.exit_code == 0);
  CHECK(r.out == "b\n");
  const auto rows = joblog_rows(dir / "log.tsv");
  REQUIRE(rows.size() == 2);
  CHECK(rows[1][0] == "2");
  CHECK(rows[1][8] == "echo b");
}

TEST_CASE("Cli.Exit.Statuses") {
  TempDir dir;
  CHECK(sh(dir, "$P run ::: 'true' 'true'").exit_code == 0);
  CHECK(sh(dir, "$P run -j2 'exit {}' ::: 0 1 2 3 0").exit_code == 3);
  std::string many;
  for (int i = 0; i < 150; ++i) many += "false\n";
  write_file(dir / "many.txt", many);
  CHECK(sh(dir, "$P run -j2 many.txt").exit_code == 101);
  write_file(dir / "hundred.txt", many.substr(0, 600));  // exactly 100 "false\n"
  CHECK(sh(dir, "$P run -j2 hundred.txt").exit_code == 100);
}

TEST_CASE("Cli.Retries") {
  TempDir dir;
  // Fails twice, then succeeds: the counter file records every try.
  const std::string job = "': {}; echo try >> count; test $(wc -l < count) -ge 3'";
  auto r = sh(dir, "$P run --retries 3 --joblog log.tsv " + job + " ::: x");
  CHECK(r.exit_code == 0);
  CHECK(lines_of(read_file(dir / "count")).size() == 3);
  CHECK(joblog_rows(dir / "log.tsv").size() == 1);  // one line per job, its last try
  ::unlink((dir / "count").c_str());
  r = sh(dir, "$P run --retries 2 --joblog log.tsv " + job + " ::: x");
  CHECK(r.exit_code == 1);
  CHECK(lines_of(read_file(dir / "count")).size() == 2);
  // Only the last try's output is printed.
  r = sh(dir, "$P run --retries 3 'echo attempt; exit 1; : {}' ::: x");
  CHECK(r.out == "attempt\n");
}

TEST_CASE("Cli.Halt.NowFailReturnsFailingStatusAndKills") {
  TempDir dir;
  const auto r = sh(dir, "$P run -j2 --joblog log.tsv --halt now,fail=1 'sleep {}; exit {}' ::: 30 1; echo rc=$?");
  CHECK(r.out == "rc=1\n");
  CHECK(r.elapsed < std::chrono::seconds(20));  // the 30 s job was killed
  CHECK(joblog_seqs(dir / "log.tsv") == std::set<long>{2});  // the killed job is not logged: --resume reruns it
  const auto seven = sh(dir, "$P run -j1 --halt now,fail=1 'exit {}' ::: 0 7 0 0");
  CHECK(seven.exit_code == 7);
}

TEST_CASE("Cli.Halt.SoonAndSuccessAndPercent") {
  TempDir dir;
  // soon: the running job finishes, no new one starts.
  auto r = sh(dir, "$P run -j2 --joblog log.tsv --halt soon,fail=1 'sleep {}; exit 5' ::: 1 0.1 0.1 0.1 0.1");
  CHECK(r.exit_code == 5);
  auto seqs = joblog_seqs(dir / "log.tsv");
  CHECK(seqs.count(1) == 1);  // it was running: it finished and was logged
  CHECK(seqs.size() <= 3);
  r = sh(dir, "$P run -j1 --halt now,success=1 'echo {}; exit {}' ::: 3 0 4");
  CHECK(r.exit_code == 0);
  CHECK(r.out == "3\n0\n");
  // N% is of all the jobs, as in GNU parallel: 2 of 7 failed is under 50%, so all run, and the
  // exit status is the percentage that failed, rounded up (2/7 -> 29).
  r = sh(dir, "$P run -j1 --halt soon,fail=50% 'echo {}; exit {}' ::: 0 1 1 0 0 0 0");
  CHECK(r.exit_code == 29);
  CHECK(r.out == "0\n1\n1\n0\n0\n0\n0\n");
  r = sh(dir, "$P run -j1 --halt soon,fail=25% 'echo {}; exit {}' ::: 0 1 1 0 0 0 0 0");
  CHECK(r.exit_code == 25);  // 2 of 8 reach 25%: halted there
  CHECK(r.out == "0\n1\n1\n");
}
