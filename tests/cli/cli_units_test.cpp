// Cli.Units: the procpool command's parsers called directly (procpool_cli library), no process started.
// The end-to-end behaviour is in the other Cli.* suites; these pin the values and the error messages.
#include <doctest/doctest.h>

#include "cli_helpers.hpp"

#include "command.hpp"
#include "gnu_options.hpp"
#include "input.hpp"
#include "joblog.hpp"
#include "limit.hpp"
#include "options.hpp"
#include "output.hpp"
#include "pipe_input.hpp"
#include "results.hpp"

#include <procpool/version.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <csignal>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

using procpool::cli::UsageError;
namespace cli = procpool::cli;
namespace fs = std::filesystem;

using clitest::TempDir;  // a fresh directory, removed afterwards (cli_helpers.hpp)

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

cli::Options parse(const std::vector<std::string>& args) {
  const auto options = cli::parse_run_options(args);
  REQUIRE(options.has_value());
  return *options;
}

/// Every job a source yields, as (args, command for slot 1).
std::vector<std::pair<std::vector<std::string>, std::string>> all_jobs(const cli::Options& options) {
  const auto source = cli::make_job_source(options);
  std::vector<std::pair<std::vector<std::string>, std::string>> jobs;
  cli::JobInput job;
  while (source->next(job) == cli::JobSource::Result::Job) jobs.emplace_back(job.args, source->command_for(job, 1));
  return jobs;
}

cli::Options template_options(std::vector<std::string> words, std::vector<std::vector<std::string>> sources,
                              std::optional<std::string> colsep = std::nullopt) {
  cli::Options options;
  options.template_mode = true;
  options.template_words = std::move(words);
  for (auto& args : sources) options.sources.push_back({cli::ArgSource::Kind::InlineArgs, std::move(args), {}});
  options.colsep = std::move(colsep);
  return options;
}

} // namespace

TEST_CASE("Cli.Duration.Units") {
  CHECK(cli::parse_duration_seconds("30", "--delay") == 30);
  CHECK(cli::parse_duration_seconds("1.5s", "--delay") == 1.5);
  CHECK(cli::parse_duration_seconds("2m", "--delay") == 120);
  CHECK(cli::parse_duration_seconds("1h", "--delay") == 3600);
  CHECK(cli::parse_duration_seconds("1d", "--delay") == 86400);
  CHECK(cli::parse_duration_seconds("0", "--delay") == 0);
  // Saturates at the largest double instead of becoming infinity.
  CHECK(cli::parse_duration_seconds("1e308d", "--grace") == std::numeric_limits<double>::max());
}

TEST_CASE("Cli.Duration.Errors") {
  CHECK_THROWS_WITH_AS(cli::parse_duration_seconds("", "--delay"), "--delay: empty duration", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_duration_seconds("s", "--delay"), "--delay: empty value", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_duration_seconds("abc", "--delay"), "--delay: 'abc' is not a number", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_duration_seconds("5x", "--grace"), "--grace: '5x' is not a number", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_duration_seconds("nan", "--delay"), "--delay: 'nan' is not a number", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_duration_seconds("1e400", "--delay"), "--delay: '1e400' is out of range", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_duration_seconds("inf", "--delay"), "--delay: 'inf' is out of range", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_duration_seconds("-1s", "--delay"), "--delay: '-1s' is negative", UsageError);
}

TEST_CASE("Cli.Timeout.FixedAndPercent") {
  const auto fixed = cli::parse_timeout("2m");
  CHECK(fixed.seconds == 120);
  CHECK(fixed.percent == 0);
  const auto dynamic = cli::parse_timeout("150%");
  CHECK(dynamic.seconds == 0);
  CHECK(dynamic.percent == 150);
  CHECK(cli::parse_timeout("0").seconds == 0);  // no timeout, as in GNU parallel
  CHECK_THROWS_WITH_AS(cli::parse_timeout("0%"), "--timeout: '0%' must be above 0%", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_timeout("x%"), "--timeout: 'x' is not a number", UsageError);
}

TEST_CASE("Cli.Jobs.Forms") {
  CHECK(cli::parse_jobs("4", 8) == 4);
  CHECK(cli::parse_jobs("100000", 8) == 100000);
  CHECK(cli::parse_jobs("50%", 8) == 4);
  CHECK(cli::parse_jobs("150%", 4) == 6);
  CHECK(cli::parse_jobs("1%", 8) == 1);  // floor(0.08) = 0, at least one job
  CHECK(cli::parse_jobs("+2", 4) == 6);
  CHECK(cli::parse_jobs("-1", 4) == 3);
  CHECK(cli::parse_jobs("-4", 4) == 1);  // never below one job
  CHECK(cli::parse_jobs("-100001", 4) == 1);
  CHECK(cli::parse_jobs("0", 4) == 1024);  // "as many as possible", bounded
}

TEST_CASE("Cli.Jobs.Errors") {
  CHECK_THROWS_WITH_AS(cli::parse_jobs("", 4), "--jobs: empty value", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_jobs("abc", 4), "--jobs: 'abc' is not an integer", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_jobs("-", 4), "--jobs: '-' is not an integer", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_jobs("2.5", 4), "--jobs: '2.5' is not an integer", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_jobs("100001", 4), "--jobs: '100001' is too many", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_jobs("+100001", 4), "--jobs: '+100001' is too many", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_jobs("99999999999999999999", 4), "--jobs: '99999999999999999999' is out of range",
                       UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_jobs("0%", 4), "--jobs: '0%' must be above 0%", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_jobs("1e9%", 4), "--jobs: '1e9%' is too many", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_jobs("x%", 4), "--jobs: 'x' is not a number", UsageError);
}

TEST_CASE("Cli.Halt.Forms") {
  using When = cli::HaltPolicy::When;
  for (const char* never : {"never", "0"}) {
    const auto p = cli::parse_halt(never);
    CHECK(p.when == When::Never);
  }
  auto p = cli::parse_halt("1");
  CHECK(p.when == When::Soon);
  CHECK(p.threshold == 1);
  CHECK(p.cond == cli::HaltPolicy::Cond::Fail);
  p = cli::parse_halt("2");
  CHECK(p.when == When::Now);
  CHECK(p.threshold == 1);
  p = cli::parse_halt("now,fail=3");
  CHECK(p.when == When::Now);
  CHECK(p.threshold == 3);
  CHECK_FALSE(p.percent);
  CHECK(p.cond == cli::HaltPolicy::Cond::Fail);
  p = cli::parse_halt("fail=2");  // no WHEN: soon
  CHECK(p.when == When::Soon);
  CHECK(p.threshold == 2);
  p = cli::parse_halt("soon,success=50%");
  CHECK(p.when == When::Soon);
  CHECK(p.cond == cli::HaltPolicy::Cond::Success);
  CHECK(p.percent);
  CHECK(p.threshold == 50);
}

TEST_CASE("Cli.Halt.GnuForms") {
  using When = cli::HaltPolicy::When;
  using Cond = cli::HaltPolicy::Cond;
  auto p = cli::parse_halt("-1");
  CHECK((p.when == When::Soon && p.cond == Cond::Success && p.threshold == 1));
  p = cli::parse_halt("-2");
  CHECK((p.when == When::Now && p.cond == Cond::Success && p.threshold == 1));
  p = cli::parse_halt("5%");
  CHECK((p.when == When::Soon && p.cond == Cond::Fail && p.percent && p.threshold == 5));
  p = cli::parse_halt("now,done=3");
  CHECK((p.when == When::Now && p.cond == Cond::Done && p.threshold == 3));
}

// GNU parallel's should_we_halt and halt, value for value (cli_gnu_test.cpp runs GNU parallel itself).
TEST_CASE("Cli.Halt.StatusAsGnu") {
  const auto fail1 = cli::parse_halt("now,fail=1");
  CHECK(cli::halt_status(fail1, {1, 1, 0, 10}, 7, 0, true) == 7);
  CHECK(cli::halt_status(fail1, {1, 1, 0, 10}, 0, 9, true) == 137);
  CHECK(cli::halt_status(fail1, {1, 1, 0, 10}, -1, 15, true) == 255);  // killed by --timeout
  CHECK_FALSE(cli::halt_status(fail1, {1, 0, 1, 10}, 0, 0, false).has_value());
  const auto fail2 = cli::parse_halt("now,fail=2");
  CHECK_FALSE(cli::halt_status(fail2, {2, 1, 1, 10}, 3, 0, true).has_value());
  CHECK(cli::halt_status(fail2, {3, 2, 1, 10}, 3, 0, true) == 2);  // the number failed, not the job's status
  const auto pct = cli::parse_halt("soon,fail=30%");
  CHECK_FALSE(cli::halt_status(pct, {3, 2, 1, 10}, 1, 0, true).has_value());
  CHECK(cli::halt_status(pct, {5, 3, 2, 10}, 1, 0, true) == 30);
  CHECK(cli::halt_final_status(pct, {10, 2, 8, 10}) == 20);
  CHECK(cli::halt_final_status(cli::parse_halt("soon,fail=2"), {10, 1, 9, 10}) == 1);
  const auto done2 = cli::parse_halt("soon,done=2");
  CHECK(cli::halt_status(done2, {2, 1, 1, 10}, 0, 0, false) == 1);
  const auto success = cli::parse_halt("now,success=50%");
  CHECK(cli::halt_status(success, {9, 4, 5, 10}, 0, 0, false) == 0);
  // Without a known total (a pipe), N% is judged over the jobs done, once 3 are.
  CHECK_FALSE(cli::halt_status(pct, {2, 2, 0, {}}, 1, 0, true).has_value());
  CHECK(cli::halt_status(pct, {3, 1, 2, {}}, 1, 0, true) == 34);
}

TEST_CASE("Cli.Options.ShellWordsAndParallelEnv") {
  CHECK(cli::shell_words("  -j2   --tag ") == std::vector<std::string>{"-j2", "--tag"});
  CHECK(cli::shell_words(R"(--tagstring 'a b' "c \"d\"" e\ f)") ==
        std::vector<std::string>{"--tagstring", "a b", "c \"d\"", "e f"});
  CHECK_THROWS_AS(cli::shell_words("'open"), UsageError);
  ::setenv("PARALLEL", "-k --tag", 1);
  CHECK(cli::with_parallel_env({"echo", ":::", "a"}) == std::vector<std::string>{"-k", "--tag", "echo", ":::", "a"});
  ::unsetenv("PARALLEL");
  CHECK(cli::with_parallel_env({"x"}) == std::vector<std::string>{"x"});
}

TEST_CASE("Cli.Options.LinkedSources") {
  const auto opt = cli::parse_run_options({"echo", ":::", "a", "b", ":::+", "1", "2", "::::+", "f1", "f2", ":::", "x"});
  REQUIRE(opt);
  REQUIRE(opt->sources.size() == 5);
  CHECK_FALSE(opt->sources[0].linked);
  CHECK(opt->sources[1].linked);
  CHECK((opt->sources[2].linked && opt->sources[2].path == "f1"));
  CHECK((opt->sources[3].linked && opt->sources[3].path == "f2"));
  CHECK_FALSE(opt->sources[4].linked);
  CHECK(cli::parse_run_options({"--xapply", "echo", ":::", "a"})->link);
  CHECK_THROWS_WITH_AS(cli::parse_run_options({"echo", "::::+"}), "::::+ needs at least one argument file", UsageError);
  CHECK_THROWS_AS(cli::parse_run_options({"echo", "{= s/a/b/ =}", ":::", "a"}), UsageError);
  CHECK_THROWS_AS(cli::parse_run_options({"--tagstring", "{=uc=}", "echo", ":::", "a"}), UsageError);
}

TEST_CASE("Cli.Halt.Errors") {
  CHECK_THROWS_WITH_AS(cli::parse_halt("later,fail=1"), "--halt: 'later,fail=1': expected now or soon before the comma",
                       UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_halt("now,bogus"),
                       "--halt: 'now,bogus': expected fail=N, fail=N%, success=N, success=N%, done=N or done=N%", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_halt("fail=0"), "--halt: 'fail=0': the count must be at least 1", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_halt("fail=101%"), "--halt: 'fail=101%': the percentage must be in (0, 100]",
                       UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_halt("fail=0%"), "--halt: 'fail=0%': the percentage must be in (0, 100]", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_halt("fail=x"), "--halt: 'x' is not an integer", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_halt("fail="), "--halt: empty value", UsageError);
}

TEST_CASE("Cli.Size.Units") {
  CHECK(cli::parse_size("100") == 100);
  // GNU parallel's multiply_binary_prefix: lower case k, m, g... are powers of 1000, upper case and Ki, Mi... of 1024.
  CHECK(cli::parse_size("10k") == 10000);
  CHECK(cli::parse_size("1.5K") == 1536);
  CHECK(cli::parse_size("2ki") == 2048);
  CHECK(cli::parse_size("2m") == 2000000);
  CHECK(cli::parse_size("2M") == 2ULL << 20);
  CHECK(cli::parse_size("2Mi") == 2ULL << 20);
  CHECK(cli::parse_size("1G") == 1ULL << 30);
  CHECK(cli::parse_size("3t") == 3000000000000ULL);
  CHECK(cli::parse_size("3T") == 3ULL << 40);
  CHECK(cli::parse_size("1e") == 1000000000000000000ULL);
  CHECK_THROWS_WITH_AS(cli::parse_size("5i"), "--memfree: '5i' is not a number", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_size(""), "--memfree: empty size", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_size("k"), "--memfree: empty value", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_size("5x"), "--memfree: '5x' is not a number", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_size("-1k"), "--memfree: '-1k' is negative", UsageError);
  // 2^34 GiB is 2^64 bytes: one past the largest uint64_t.
  CHECK_THROWS_WITH_AS(cli::parse_size("17179869184G"), "--memfree: '17179869184G' is too large (the limit is 16 EiB)",
                       UsageError);
}

TEST_CASE("Cli.Replacement.Strings") {
  const std::vector<std::string> one{"dir/file.tar.gz"};
  CHECK(cli::CommandTemplate("echo {}").expand(one, 1, 1, true) == "echo dir/file.tar.gz");
  CHECK(cli::CommandTemplate("{.}").expand(one, 1, 1, true) == "dir/file.tar");
  CHECK(cli::CommandTemplate("{/}").expand(one, 1, 1, true) == "file.tar.gz");
  CHECK(cli::CommandTemplate("{//}").expand(one, 1, 1, true) == "dir");
  CHECK(cli::CommandTemplate("{/.}").expand(one, 1, 1, true) == "file.tar");
  // A dot in a directory name is not an extension; a leading dot is one for GNU parallel (s:\.[^/.]*$::).
  CHECK(cli::CommandTemplate("{.}").expand({"a.d/file"}, 1, 1, true) == "a.d/file");
  CHECK(cli::CommandTemplate("echo {.}").expand({".bashrc"}, 1, 1, true) == "echo ''");
  CHECK(cli::CommandTemplate("{//}").expand({"dir/"}, 1, 1, true) == ".");  // Perl's dirname
  CHECK(cli::CommandTemplate("{//}").expand({"a/b//"}, 1, 1, true) == "a");
  CHECK(cli::CommandTemplate("{//}").expand({"file"}, 1, 1, true) == ".");
  CHECK(cli::CommandTemplate("{//}").expand({"/file"}, 1, 1, true) == "/");
  const cli::CommandTemplate seq_slot("job {#} on {%}");
  CHECK(seq_slot.expand({"x"}, 7, 2, true) == "job 7 on 2");
}

TEST_CASE("Cli.Replacement.Positional") {
  const cli::CommandTemplate t("cmp {2} {1} {3}end");
  CHECK(t.expand({"x", "y z"}, 1, 1, true) == "cmp 'y z' x end");  // {3} beyond the arguments: nothing
  CHECK(cli::CommandTemplate("{2/.}").expand({"a", "p/q.r"}, 1, 1, true) == "q");
  // {} is every argument, separated by spaces, each quoted on its own.
  CHECK(cli::CommandTemplate("echo {}").expand({"a b", "c"}, 1, 1, true) == "echo 'a b' c");
}

TEST_CASE("Cli.Replacement.AppendAndLiteral") {
  // No replacement string: the arguments are appended.
  CHECK(cli::CommandTemplate("echo").expand({"a b", "c"}, 1, 1, true) == "echo 'a b' c");
  // An empty template: the arguments are the command, unquoted.
  CHECK(cli::CommandTemplate("").expand({"echo hi; ls"}, 1, 1, true) == "echo hi; ls");
  // Not replacement strings: kept literally, and then nothing is appended.
  CHECK(cli::CommandTemplate("echo {x} {0} {").expand({"a"}, 1, 1, true) == "echo {x} {0} { a");
  CHECK(cli::CommandTemplate("echo {x} {}").expand({"a"}, 1, 1, true) == "echo {x} a");
  // Tags (quote = false) get the raw value.
  CHECK(cli::CommandTemplate("{} {/}").expand({"a b/c d"}, 1, 1, false) == "a b/c d c d");
}

TEST_CASE("Cli.Replacement.Quoting") {
  CHECK(cli::shell_quote("plain-word_1.2/x:y,z+a@b%c^d=e") == "plain-word_1.2/x:y,z+a@b%c^d=e");
  CHECK(cli::shell_quote("") == "''");
  CHECK(cli::shell_quote("a b") == "'a b'");
  CHECK(cli::shell_quote("$HOME") == "'$HOME'");
  CHECK(cli::shell_quote("it's") == R"('it'"'"'s')");
  CHECK(cli::shell_quote("*;|&") == "'*;|&'");
  CHECK(cli::CommandTemplate("rm {}").expand({"x'; rm -rf /; '"}, 1, 1, true) == R"(rm 'x'"'"'; rm -rf /; '"'"'')");
}

TEST_CASE("Cli.PlainWords.Split") {
  std::vector<std::string> words;
  CHECK(cli::split_plain_words("ls -l 'a b' \"c d\"", words));
  CHECK(words == std::vector<std::string>{"ls", "-l", "a b", "c d"});
  CHECK(cli::split_plain_words("a\t b", words));
  CHECK(words == std::vector<std::string>{"a", "b"});
  for (const char* shell :
       {"echo $HOME", "a | b", "a > f", "a; b", "VAR=1 cmd", "echo \"$x\"", "echo 'open", "", "a && b", "echo `x`"}) {
    CAPTURE(shell);
    CHECK_FALSE(cli::split_plain_words(shell, words));
  }
  CHECK(cli::split_plain_words("cmd VAR=1", words));  // '=' after the first word is an argument
}

TEST_CASE("Cli.PlainWords.Plan") {
  cli::CommandPlanner planner(false);
  CHECK_FALSE(planner.plan("cd /tmp").direct);       // a builtin
  CHECK_FALSE(planner.plan("echo -n x").direct);     // dash's echo differs
  CHECK_FALSE(planner.plan("echo a | cat").direct);  // shell syntax
  const auto plan = planner.plan("/bin/true 'a b'");
  CHECK(plan.direct);
  CHECK(plan.path == "/bin/true");
  CHECK(plan.argv == std::vector<std::string>{"/bin/true", "a b"});
  cli::CommandPlanner always_shell(true);
  CHECK_FALSE(always_shell.plan("/bin/true").direct);
}

TEST_CASE("Cli.Colsep.Literal") {
  const auto jobs = all_jobs(template_options({"echo", "{2}", "{1}"}, {{"a,b", "c,d,e", "f"}}, ","));
  REQUIRE(jobs.size() == 3);
  CHECK(jobs[0].first == std::vector<std::string>{"a", "b"});
  CHECK(jobs[0].second == "echo b a");
  CHECK(jobs[1].first == std::vector<std::string>{"c", "d", "e"});
  CHECK(jobs[1].second == "echo d c");
  CHECK(jobs[2].first == std::vector<std::string>{"f"});
  CHECK(jobs[2].second == "echo  f");
}

TEST_CASE("Cli.Colsep.Regex") {
  const auto jobs = all_jobs(template_options({"echo", "{1}-{2}"}, {{"a ,; b", "x;y"}}, " *[,;]+ *"));
  REQUIRE(jobs.size() == 2);
  CHECK(jobs[0].first == std::vector<std::string>{"a", "b"});
  CHECK(jobs[0].second == "echo a-b");
  CHECK(jobs[1].second == "echo x-y");
  CHECK_THROWS_WITH_AS(cli::make_job_source(template_options({"echo"}, {{"a"}}, "")), "--colsep: empty separator",
                       UsageError);
  try {
    (void)cli::make_job_source(template_options({"echo"}, {{"a"}}, "(a"));
    FAIL("an invalid regex was accepted");
  } catch (const UsageError& e) {
    CHECK(std::string(e.what()).rfind("--colsep: '(a' is not a valid regex: ", 0) == 0);
  }
}

TEST_CASE("Cli.Sources.Combinations") {
  // Every combination, the last source varying fastest; sequence numbers in that order.
  const auto options = template_options({"echo"}, {{"a", "b"}, {"1", "2"}});
  const auto source = cli::make_job_source(options);
  CHECK(source->count_total() == 4);
  std::vector<std::string> commands;
  cli::JobInput job;
  std::uint64_t last_seq = 0;
  while (source->next(job) == cli::JobSource::Result::Job) {
    CHECK(job.seq == last_seq + 1);
    last_seq = job.seq;
    commands.push_back(source->command_for(job, 1));
  }
  CHECK(commands == std::vector<std::string>{"echo a 1", "echo a 2", "echo b 1", "echo b 2"});
  // An empty source among others is one empty value (GNU parallel's); only empty sources: no job.
  const auto with_empty = all_jobs(template_options({"echo"}, {{"a"}, {}}));
  REQUIRE(with_empty.size() == 1);
  CHECK(with_empty[0].second == "echo a ''");
  CHECK(all_jobs(template_options({"echo"}, {{}, {}})).empty());
  CHECK(all_jobs(template_options({"echo"}, {{}})).empty());
}

TEST_CASE("Cli.Sources.BatchFile") {
  TempDir dir;
  write_file(dir / "batch", "echo one\n\n  # a comment\necho two\r\necho three");
  cli::Options options;
  options.batch_file = dir / "batch";
  const auto source = cli::make_job_source(options);
  CHECK(source->count_total() == 3);
  const auto jobs = all_jobs(options);
  REQUIRE(jobs.size() == 3);
  CHECK(jobs[0].second == "echo one");
  CHECK(jobs[1].second == "echo two");
  CHECK(jobs[2].second == "echo three");
  CHECK_THROWS_WITH_AS(cli::LineReader(dir / "missing"),
                       ("cannot open '" + (dir / "missing") + "': No such file or directory").c_str(), UsageError);
  CHECK_THROWS_WITH_AS(cli::LineReader(dir.path.string()),
                       ("cannot read '" + dir.path.string() + "': it is a directory").c_str(), UsageError);
}

TEST_CASE("Cli.Joblog.Format") {
  cli::JobLogEntry e;
  e.seq = 3;
  e.start_epoch = 1700000000.5;
  e.runtime = 1.25;
  e.send = 0;
  e.receive = 12;
  e.exitval = 1;
  e.signal = 0;
  e.command = "echo a\nb";  // a newline would split the record
  CHECK(cli::format_joblog_entry(e) == "3\t:\t1700000000.500\t     1.250\t0\t12\t1\t0\techo a b\n");
  e.exitval = -1;
  e.signal = 15;
  e.runtime = 12345.6789;
  CHECK(cli::format_joblog_entry(e) == "3\t:\t1700000000.500\t 12345.679\t0\t12\t-1\t15\techo a b\n");
}

TEST_CASE("Cli.Joblog.WriteThenResume") {
  TempDir dir;
  const std::string path = dir / "log";
  {
    cli::JobLogWriter writer(path, false);
    cli::JobLogEntry e;
    e.seq = 1;
    e.command = "ok";
    writer.write(e);
    e.seq = 2;
    e.exitval = 3;
    e.command = "fails";
    writer.write(e);
    e.seq = 4;
    e.exitval = 0;
    e.signal = 9;
    e.command = "killed";
    writer.write(e);
  }
  const std::string written = read_file(path);
  CHECK(written.rfind(cli::kJoblogHeader, 0) == 0);
  CHECK(std::count(written.begin(), written.end(), '\n') == 4);

  cli::JobLogWriter append(path, true);
  auto state = cli::ResumeState::load(append.fd(), path);
  CHECK(state.logged() == 3);
  CHECK(state.skip(1, false));
  CHECK(state.skip(1, true));
  CHECK(state.skip(2, false));
  CHECK_FALSE(state.skip(2, true));   // failed: --resume-failed runs it again
  CHECK_FALSE(state.skip(3, false));  // never logged
  CHECK_FALSE(state.skip(4, true));   // killed by a signal counts as failed
  CHECK_FALSE(state.skip(99, false));

  // The last line for a number wins; appending does not rewrite the header.
  cli::JobLogEntry again;
  again.seq = 2;
  again.command = "fails";
  append.write(again);
  state = cli::ResumeState::load(append.fd(), path);
  CHECK(state.logged() == 3);
  CHECK(state.skip(2, true));
  CHECK(read_file(path).rfind(cli::kJoblogHeader, 0) == 0);
  CHECK(read_file(path).find("Seq", 1) == std::string::npos);
}

TEST_CASE("Cli.Joblog.TornLastLineDropped") {
  TempDir dir;
  const std::string path = dir / "log";
  write_file(path, std::string(cli::kJoblogHeader) + "1\t:\t0.000\t     0.000\t0\t0\t0\t0\tok\n5\t:\t0.0");
  cli::JobLogWriter writer(path, true);
  CHECK(read_file(path) == std::string(cli::kJoblogHeader) + "1\t:\t0.000\t     0.000\t0\t0\t0\t0\tok\n");
  const auto state = cli::ResumeState::load(writer.fd(), path);
  CHECK(state.logged() == 1);
  CHECK_FALSE(state.skip(5, false));
}

TEST_CASE("Cli.Joblog.Malformed") {
  TempDir dir;
  const std::string path = dir / "log";
  write_file(path, std::string(cli::kJoblogHeader) + "1\t:\t0.000\t0.000\t0\t0\t0\t0\tok\nx\ty\n");
  cli::JobLogWriter writer(path, true);
  CHECK_THROWS_WITH_AS(cli::ResumeState::load(writer.fd(), path),
                       ("joblog '" + path +
                        "' line 3 is malformed: expected Seq Host Starttime JobRuntime Send Receive Exitval "
                        "Signal Command separated by tabs, got 'x\ty'")
                           .c_str(),
                       UsageError);
  write_file(path, "0\t:\t0.000\t0.000\t0\t0\t0\t0\tseq zero\n");  // sequence numbers start at 1
  cli::JobLogWriter again(path, true);
  CHECK_THROWS_AS(cli::ResumeState::load(again.fd(), path), UsageError);
}

TEST_CASE("Cli.Joblog.RefusesNonFiles") {
  TempDir dir;
  CHECK_THROWS_WITH_AS(
      cli::JobLogWriter(dir.path.string(), false),
      ("joblog '" + dir.path.string() + "' is not a regular file, a pipe or a terminal: refusing to use it").c_str(),
      UsageError);
  const std::string fifo = dir / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH_AS(cli::JobLogWriter(fifo, true),
                       ("joblog '" + fifo + "' is not a regular file: --resume needs one to read").c_str(), UsageError);
  CHECK_THROWS_WITH_AS(cli::JobLogWriter(dir / "no/such/dir", false),
                       ("cannot open joblog '" + (dir / "no/such/dir") + "': No such file or directory").c_str(),
                       UsageError);
}

TEST_CASE("Cli.Options.Modes") {
  auto o = parse({"-j", "2", "echo", "{}", ":::", "a", "b", "::::", "f1", "f2"});
  CHECK(o.jobs == 2);
  CHECK(o.template_mode);
  CHECK(o.template_words == std::vector<std::string>{"echo", "{}"});
  REQUIRE(o.sources.size() == 3);
  CHECK(o.sources[0].kind == cli::ArgSource::Kind::InlineArgs);
  CHECK(o.sources[0].args == std::vector<std::string>{"a", "b"});
  CHECK(o.sources[1].kind == cli::ArgSource::Kind::File);
  CHECK(o.sources[1].path == "f1");
  CHECK(o.sources[2].path == "f2");

  o = parse({"-a", "args.txt", "gzip", "{}"});
  CHECK(o.template_mode);
  REQUIRE(o.sources.size() == 1);
  CHECK(o.sources[0].path == "args.txt");

  o = parse({"gzip", "-9"});  // two words and no source: a template over stdin
  CHECK(o.template_mode);
  REQUIRE(o.sources.size() == 1);
  CHECK(o.sources[0].path == "-");

  o = parse({"--", "batch.txt"});
  CHECK_FALSE(o.template_mode);
  CHECK(o.batch_file == "batch.txt");
  CHECK(parse({}).batch_file == "-");
}

TEST_CASE("Cli.Options.Values") {
  const auto o = parse({"--timeout", "50%", "--grace", "2s", "--halt", "now,fail=1", "--retries", "4294967296",
                        "--memfree", "1G", "--delay", "1m", "--lb", "-k", "--tag", "--eta", "--shell", "b.txt"});
  CHECK(o.timeout.percent == 50);
  CHECK(o.kill_grace_seconds == 2);
  CHECK(o.halt.when == cli::HaltPolicy::When::Now);
  CHECK(o.tries == std::numeric_limits<unsigned>::max());  // saturates instead of wrapping to 0
  CHECK(o.memfree_bytes == 1ULL << 30);
  CHECK(o.delay_seconds == 60);
  CHECK(o.output == cli::OutputMode::LineBuffer);
  CHECK(o.keep_order);
  CHECK(o.tag);
  CHECK(o.progress == cli::ProgressStyle::Eta);
  CHECK(o.shell_always);

  const auto tty = parse({"--tty", "-j", "4", "b.txt"});
  CHECK(tty.jobs == 1);
  CHECK(tty.output == cli::OutputMode::Ungroup);
}

TEST_CASE("Cli.Options.Conflicts") {
  using Args = std::vector<std::string>;
  CHECK_THROWS_WITH_AS(cli::parse_run_options(Args{"--group", "--ungroup", "b"}),
                       "--group, --line-buffer and --ungroup exclude each other", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_run_options(Args{"--lb", "-u", "b"}),
                       "--group, --line-buffer and --ungroup exclude each other", UsageError);
  const char* const resume_needs = "--resume needs --joblog FILE or --results NAME (GNU parallel's layout, not a table)";
  CHECK_THROWS_WITH_AS(cli::parse_run_options(Args{"--resume", "b"}), resume_needs, UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_run_options(Args{"--resume", "--results", "r.csv", "b"}), resume_needs, UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_run_options(Args{"--resume", "--results", "r", "--results-layout", "seq", "b"}),
                       resume_needs, UsageError);
  CHECK(cli::parse_run_options(Args{"--resume", "--results", "r", "b"})->resume);
  CHECK_THROWS_WITH_AS(cli::parse_run_options(Args{"--resume-failed", "b"}),
                       "--resume and --resume-failed need --joblog FILE", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_run_options(Args{"--colsep", ",", "b.txt"}),
                       "--colsep needs a template and arguments (::: or -a)", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_run_options(Args{"-a", "-", "-a", "-", "echo"}),
                       "stdin (-) can be read by one input source only", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_run_options(Args{"-a", "-", "echo", "::::", "-"}),
                       "stdin (-) can be read by one input source only", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_run_options(Args{"echo", "::::"}), ":::: needs at least one argument file",
                       UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_run_options(Args{"-j", "", "b"}), "--jobs: empty value", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_run_options(Args{"--joblog", "", "b"}), "--joblog: empty value", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_run_options(Args{"--bogus", "b"}),
                       "unknown option '--bogus' (see procpool run --help)", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_run_options(Args{"--load", "0", "b"}), "--load: '0' must be above 0", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_run_options(Args{"--retries", "-1", "b"}), "--retries: '-1' is negative", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_run_options(Args{"--halt", "now,fail=0", "b"}),
                       "--halt: 'now,fail=0': the count must be at least 1", UsageError);
  CHECK_THROWS_AS(cli::parse_run_options(Args{"--jobs"}), UsageError);  // CLI11's own message: a value is missing
}

TEST_CASE("Cli.Version.FromMeson") {
  // PROCPOOL_MESON_VERSION is meson.project_version(), passed by tests/cli/meson.build.
  CHECK(std::string(PROCPOOL_VERSION) == PROCPOOL_MESON_VERSION);
  CHECK(fmt::format("{}.{}.{}", PROCPOOL_VERSION_MAJOR, PROCPOOL_VERSION_MINOR, PROCPOOL_VERSION_PATCH) ==
        PROCPOOL_VERSION);
}

// The refusal table: every spelling of every GNU parallel option procpool lacks is refused, with
// the option's name and its advice in the message.
TEST_CASE("Cli.Options.GnuOptionsRefusedFromTheTable") {
  std::size_t spellings = 0;
  for (const auto& refused : cli::refused_gnu_options()) {
    CHECK_FALSE(refused.advice.empty());
    std::string_view names = refused.names;
    while (!names.empty()) {
      const auto comma = names.find(',');
      const std::string name(names.substr(0, comma));
      names = comma == std::string_view::npos ? std::string_view{} : names.substr(comma + 1);
      std::vector<std::string> args{name};
      if (refused.takes_value) args.push_back("1");
      args.insert(args.end(), {"echo", ":::", "a"});
      INFO(name);
      try {
        (void)cli::parse_run_options(args);
        FAIL("accepted");
      } catch (const UsageError& e) {
        const std::string message = e.what();
        CHECK(message.find("not supported by procpool run: " + std::string(refused.advice)) != std::string::npos);
      }
      ++spellings;
    }
  }
  CHECK(spellings > 150);
}

// The local runner's options that a --broker run would not honour are refused there, not ignored.
TEST_CASE("Cli.Options.LocalOnlyOptionsRefusedWithBroker") {
  using Args = std::vector<std::string>;
  CHECK_THROWS_WITH_AS(cli::parse_run_options(Args{"--broker", "redis://h", "--nice", "5", "b"}),
                       "--nice cannot be used with --broker: start procpool worker with nice -n N", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_run_options(Args{"--broker", "redis://h", "--joblog", "j", "--retry-failed", "b"}),
                       "--retry-failed cannot be used with --broker: use --resume-failed", UsageError);
  CHECK_THROWS_AS(cli::parse_run_options(Args{"--broker", "redis://h", "--tmpdir", "/tmp", "b"}), UsageError);
  CHECK_THROWS_AS(cli::parse_run_options(Args{"--broker", "redis://h", "-t", "b"}), UsageError);
  CHECK_NOTHROW(cli::parse_run_options(Args{"--broker", "redis://h", "-v", "--shuf", "b"}));
}

// --pipe / --pipepart (issue 15): sizes, separators and chunk boundaries as GNU parallel computes them
// (the end-to-end comparison with GNU parallel itself is Cli.Gnu.PipeChunksAsGnu).
TEST_CASE("Cli.Pipe.BlockSizes") {
  CHECK(cli::parse_block_size("100") == 100);
  CHECK(cli::parse_block_size("10k") == 10000);
  CHECK(cli::parse_block_size("10K") == 10240);
  CHECK(cli::parse_block_size("10ki") == 10240);
  CHECK(cli::parse_block_size("1M") == 1 << 20);
  CHECK(cli::parse_block_size("1m") == 1e6);
  CHECK(cli::parse_block_size("1.5Mi") == 1.5 * (1 << 20));
  CHECK(cli::parse_block_size("2G") == 2.0 * (1 << 30));
  CHECK(cli::parse_block_size("-3") == -3);
  CHECK_THROWS_AS(cli::parse_block_size(""), UsageError);
  CHECK_THROWS_AS(cli::parse_block_size("0"), UsageError);
  CHECK_THROWS_AS(cli::parse_block_size("1x"), UsageError);
  CHECK_THROWS_AS(cli::parse_block_size("1kb"), UsageError);
  CHECK_THROWS_AS(cli::parse_block_size("k"), UsageError);
  CHECK(cli::unescape_record_separator("a\\n\\t\\0\\\\\\x") == std::string("a\n\t\0\\\\x", 7));
}

TEST_CASE("Cli.Pipe.RecordSplits") {
  const cli::RecordSplit lines;
  CHECK(lines.last("a\nbb\nc") == 5);
  CHECK(lines.last("abc") == std::string::npos);
  CHECK(lines.nth("a\nb\nc\n", 2) == 4);
  CHECK(lines.nth("a\nb\n", 3) == std::string::npos);
  const cli::RecordSplit fasta{"", ">"};
  CHECK(fasta.last(">a\n>b\n") == 3);
  CHECK(fasta.last(">a\n") == std::string::npos);  // a split at 0 is not one
  CHECK(fasta.nth(">a\n>b\n>c", 2) == 6);           // the record at 0 is the first
  const cli::RecordSplit both{"\n", ">"};
  CHECK(both.last("x\n>a\ny\n") == 2);
  const cli::RecordSplit anywhere{"", ""};
  CHECK(anywhere.last("abc") == 3);
}

namespace {

/// Every chunk a StreamChunker makes of `input`, read `step` bytes at a time (with a would-block
/// between reads, as a slow pipe gives).
std::vector<std::string> chunks_of(const std::string& input, std::uint64_t block, cli::RecordSplit split,
                                   std::size_t records, std::size_t step, std::size_t header_lines = 0,
                                   std::size_t lines = 0) {
  cli::StreamChunker chunker(block, std::move(split), records, header_lines, lines);
  std::size_t at = 0;
  bool blocked = false;
  const cli::StreamChunker::ReadFn read = [&](char* to, std::size_t max) -> long {
    if ((blocked = !blocked)) return -1;
    const std::size_t n = std::min({max, step, input.size() - at});
    std::memcpy(to, input.data() + at, n);
    at += n;
    return static_cast<long>(n);
  };
  std::vector<std::string> chunks;
  for (int rounds = 0; rounds < 100000; ++rounds) {
    cli::PipeChunk chunk;
    const auto r = chunker.next(chunk, read);
    if (r == cli::StreamChunker::Result::End) break;
    if (r == cli::StreamChunker::Result::Chunk) chunks.push_back(chunk.header + std::string(chunk.bytes.get(), chunk.size));
  }
  return chunks;
}

} // namespace

TEST_CASE("Cli.Pipe.StreamChunksAsGnu") {
  using Chunks = std::vector<std::string>;
  // seq 10 | parallel --pipe --block 5: the last split within every 5 bytes.
  const std::string ten = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n";
  for (const std::size_t step : {1UL, 3UL, 100UL}) {
    INFO(step);
    CHECK(chunks_of(ten, 5, {}, 0, step) == Chunks{"1\n2\n", "3\n4\n", "5\n6\n", "7\n8\n", "9\n10\n"});
    CHECK(chunks_of(ten, 5, {}, 3, step) == Chunks{"1\n2\n3\n", "4\n5\n6\n", "7\n8\n9\n", "10\n"});  // -N3
    CHECK(chunks_of("h\n" + ten, 5, {}, 0, step, 1) ==
          Chunks{"h\n1\n2\n", "h\n3\n4\n", "h\n5\n6\n", "h\n7\n8\n", "h\n9\n10\n"});  // --header :
  }
  CHECK(chunks_of("abcdefgh", 3, {"", ""}, 0, 2) == Chunks{"abc", "def", "gh"});  // --recend ''
  CHECK(chunks_of("", 3, {}, 0, 1).empty());                                     // no input, no job
  // -L 3: whole groups of three lines, also at the end of the input (then the rest).
  CHECK(chunks_of(ten, 100, {}, 0, 4, 0, 3) == Chunks{"1\n2\n3\n4\n5\n6\n7\n8\n9\n", "10\n"});
  CHECK(chunks_of(ten, 9, {}, 0, 4, 0, 3) == Chunks{"1\n2\n3\n", "4\n5\n6\n", "7\n8\n9\n", "10\n"});
  CHECK(chunks_of("no newline", 100, {}, 0, 3) == Chunks{"no newline"});
  // A record longer than the block: the block grows (GNU's 1.3x + 1: 7, 11, 16), no record is cut.
  CHECK(chunks_of("aaaaaaaaaaaa\nb\n", 4, {}, 0, 5) == Chunks{"aaaaaaaaaaaa\nb\n"});
  CHECK(chunks_of("aaaaaaaaaaaa\nbbbbbbbbbbbbbbbbbbbbb\n", 4, {}, 0, 5) ==
        Chunks{"aaaaaaaaaaaa\n", "bbbbbbbbbbbbbbbbbbbbb\n"});
}

TEST_CASE("Cli.Pipe.PartPositionsAsGnu") {
  TempDir dir;
  const std::string path = dir / "f.txt";
  std::string text;
  for (int i = 1; i <= 10; ++i) text += std::to_string(i) + "\n";
  write_file(path, text);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  // parallel --pipepart --block 5: the first split at or after every 5th byte.
  CHECK(cli::part_positions(fd, text.size(), 5, 0, {}) == std::vector<std::uint64_t>{0, 6, 12, 18, 21});
  CHECK(cli::part_positions(fd, text.size(), 100, 0, {}) == std::vector<std::uint64_t>{0, 21});
  CHECK(cli::part_positions(fd, text.size(), 5, 2, {}) == std::vector<std::uint64_t>{2, 8, 14, 21});
  ::close(fd);
}

TEST_CASE("Cli.Pipe.OptionConflicts") {
  using Args = std::vector<std::string>;
  const auto pipe = parse({"--pipe", "--block", "10k", "--recend", "\\n", "-N", "3", "wc"});
  CHECK(pipe.pipe == cli::PipeMode::Pipe);
  CHECK(pipe.template_words == std::vector<std::string>{"wc"});  // one word is the command, not a batch file
  CHECK(*pipe.block == 10000);
  CHECK(*pipe.max_args == 3);
  CHECK_THROWS_WITH_AS(cli::parse_run_options(Args{"--block", "1", "b"}),
                       "--block, --recstart and --recend need --pipe or --pipepart", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_run_options(Args{"--pipe", "--pipepart", "wc"}),
                       "--pipe and --pipepart exclude each other", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_run_options(Args{"--pipepart", "wc"}),
                       "--pipepart needs the file to cut: -a FILE or :::: FILE", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_run_options(Args{"--pipepart", "-a", "-", "wc"}),
                       "--pipepart only works on seekable files, not streams/pipes: use --pipe for stdin", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_run_options(Args{"--pipe", "--block", "-2", "wc"}),
                       "--block '-2': a negative size needs --pipepart", UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_run_options(Args{"--pipe", "--shuf", "wc"}), "--shuf cannot be used with --pipe",
                       UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_run_options(Args{"--pipepart", "-N", "2", "-a", "f", "wc"}),
                       "-n/-N/-L (records per job) work with --pipe, not with --pipepart: use --pipe < FILE", UsageError);
  CHECK_THROWS_AS(cli::parse_run_options(Args{"--pipe", "wc", ":::", "a"}), UsageError);
  CHECK_THROWS_AS(cli::parse_run_options(Args{"--pipe", "--header", "x.*", "wc"}), UsageError);
  CHECK_THROWS_AS(cli::parse_run_options(Args{"--pipe", "-N", "0", "wc"}), UsageError);
  CHECK_THROWS_AS(cli::parse_run_options(Args{"--pipe"}), UsageError);
}

TEST_CASE("Cli.Options.TermSeq") {
  const auto steps = cli::parse_termseq("TERM,200,SIGINT,1.5,9");
  REQUIRE(steps.size() == 3);
  CHECK(steps[0].signal == SIGTERM);
  CHECK(steps[0].seconds == 0.2);
  CHECK(steps[1].signal == SIGINT);
  CHECK(steps[1].seconds == 0.0015);
  CHECK(steps[2].signal == SIGKILL);
  CHECK(steps[2].seconds == 0);
  CHECK_THROWS_AS(cli::parse_termseq("NOPE,1"), UsageError);
  CHECK_THROWS_AS(cli::parse_termseq("TERM,-1"), UsageError);
  CHECK_THROWS_AS(cli::parse_termseq(""), UsageError);
}

TEST_CASE("Cli.Options.ColourAndCsv") {
  const auto ctag = cli::parse_run_options({"--ctag", "echo", ":::", "a"});
  CHECK((ctag->tag && ctag->color));
  const auto ctagstring = cli::parse_run_options({"--ctagstring", "<{}>", "echo", ":::", "a"});
  CHECK((ctagstring->color && ctagstring->tagstring == "<{}>"));
  CHECK(cli::parse_run_options({"--tagstring", "X", "--ctagstring", "Y", "echo", ":::", "a"})->tagstring == "X");
  CHECK(!cli::parse_run_options({"--tag", "echo", ":::", "a"})->color);
  // GNU parallel's first colours (seq 1, 2) and its cycle of 307.
  CHECK(cli::colour_for_seq(1) == "\033[48;5;134;38;5;231m\033[K");
  CHECK(cli::colour_for_seq(2) == "\033[48;5;021;38;5;231m\033[K");
  CHECK(cli::colour_for_seq(308) == cli::colour_for_seq(1));
  const auto csv = cli::parse_run_options({"--csv", "echo", ":::", "a"});
  CHECK((csv->csv && csv->colsep == "," && csv->trim == cli::Trim::None));
  const auto tsv = cli::parse_run_options({"--csv", "--colsep", "\\t", "echo", ":::", "a"});
  CHECK((tsv->colsep == "\t" && !tsv->trim));  // trimmed (lr) by default, as with --colsep
  CHECK_THROWS_AS(cli::parse_run_options({"--csv", "--colsep", "ab", "echo", ":::", "a"}), UsageError);
  CHECK_THROWS_AS(cli::parse_run_options({"--csv", "--colsep", "\"", "echo", ":::", "a"}), UsageError);
}

TEST_CASE("Cli.Results.GnuNames") {
  using procpool::cli::args_as_dirname;
  using procpool::cli::components_beneath;
  // Per record: each column's name then its escaped value; --header names sorted numerically, then as text.
  CHECK(args_as_dirname({"a", "b/c"}, {}, {}) == "1/a/2/b\\_c");
  CHECK(args_as_dirname({"a", "b", "c"}, {1, 1, 1}, {}) == "1/a/1/b/1/c");
  CHECK(args_as_dirname({"x", "y"}, {}, {"b", "a"}) == "a/y/b/x");
  CHECK(args_as_dirname({"x", "y", "z"}, {}, {"10", "9"}) == "3/z/9/y/10/x");
  CHECK(args_as_dirname({std::string("t\tb\\n\0", 6)}, {}, {}) == "1/t\\tb\\\\n\\0");
  CHECK(args_as_dirname({std::string(300, 'v')}, {}, {}) == "1/" + std::string(255, 'v'));
  CHECK(args_as_dirname({}, {}, {}).empty());
  CHECK(components_beneath("a//./b/../c/") == std::vector<std::string>{"a", "c"});
  CHECK(components_beneath("1/..") == std::vector<std::string>{});
  CHECK(!components_beneath("1/../.."));
  CHECK(!components_beneath("../x"));
}

TEST_CASE("Cli.Results.TableFields") {
  using procpool::cli::csv_field;
  CHECK(csv_field("plain", ',') == "plain");
  CHECK(csv_field("a,b", ',') == "\"a,b\"");
  CHECK(csv_field("a,b", '\t') == "a,b");
  CHECK(csv_field("say \"hi\"", ',') == "\"say \"\"hi\"\"\"");
  CHECK(csv_field("x\ny", ',') == "\"x\ny\"");
  CHECK(csv_field("", ',').empty());
  CHECK(procpool::cli::json_escape("a\"b\\c\n\x01") == "a\\\"b\\\\c\\u000a\\u0001");
}

TEST_CASE("Cli.Limit.Predefined") {
  using procpool::cli::JobLimit;
  using procpool::cli::LimitVerdict;
  CHECK(procpool::cli::limit_verdict(0) == LimitVerdict::Start);
  CHECK(procpool::cli::limit_verdict(1) == LimitVerdict::Wait);
  CHECK(procpool::cli::limit_verdict(2) == LimitVerdict::KillYoungest);
  CHECK(procpool::cli::limit_verdict(127) == LimitVerdict::Wait);
  CHECK(JobLimit::cached_and_free("MemTotal: 100 kB\nMemFree: 10 kB\nMemAvailable: 50 kB\nBuffers: 1 kB\n"
                                  "Cached: 2 kB\nSwapCached: 4 kB\nActive: 8 kB\n") == 17 * 1024);
  CHECK(!JobLimit::cached_and_free("nothing: 1 kB\n"));
  const auto ticks = JobLimit::io_ticks("   8       0 sda 1 2 3 4 5 6 7 8 9 1234 11\n 7 0 loop0 1 2\n");
  CHECK(ticks.size() == 1);
  CHECK(ticks.at("sda") == 1234);
  // A predefined limit reads its value as GNU parallel does; anything else is a command.
  CHECK_THROWS_AS(JobLimit("mem 5x"), UsageError);
  CHECK_THROWS_AS(JobLimit("load -1"), UsageError);
  CHECK(JobLimit("mem 1k").check() == LimitVerdict::Start);
  CHECK(JobLimit("mem 1E").check() == LimitVerdict::KillYoungest);
  CHECK(JobLimit("exit 2").check() == LimitVerdict::KillYoungest);
  CHECK(JobLimit("exit 1").check() == LimitVerdict::Wait);
  CHECK(JobLimit("test \"$SSHLOGIN\" = :").check() == LimitVerdict::Start);
}
