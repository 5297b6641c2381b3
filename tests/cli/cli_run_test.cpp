// procpool run: batch files, templates and replacement strings, direct exec, odd input, bad input.
#include "cli_helpers.hpp"

#include <procpool/version.hpp>

#include <algorithm>

using namespace clitest;

TEST_CASE("Cli.Run.BatchFileSkipsBlankAndComments") {
  TempDir dir;
  write_file(dir / "b.txt", "echo one\n\n   \n# a comment\n  # indented comment\necho two\necho three\n");
  const auto r = sh(dir, "$P run -j2 b.txt");
  CHECK(r.exit_code == 0);
  auto lines = lines_of(r.out);
  std::sort(lines.begin(), lines.end());
  CHECK(lines == std::vector<std::string>{"one", "three", "two"});
}

TEST_CASE("Cli.Run.StdinBatchAndDash") {
  TempDir dir;
  auto r = sh(dir, "$P run -j1", "echo a\necho b\n");
  CHECK(r.exit_code == 0);
  CHECK(r.out == "a\nb\n");
  r = sh(dir, "$P run -j1 -", "echo c\n");
  CHECK(r.out == "c\n");
}

TEST_CASE("Cli.Run.HelpIsComplete") {
  TempDir dir;
  const auto r = sh(dir, "$P --help");
  CHECK(r.exit_code == 0);
  for (const char* option : {"--jobs", "--joblog", "--resume", "--resume-failed", "--retries", "--timeout", "--halt",
                             "--keep-order", "--group", "--line-buffer", "--ungroup", "--tag", "--tagstring",
                             "--results", "--bar", "--eta", "--progress", "--dry-run", "--delay", "--memfree",
                             "--load", "--verbose", "--colsep", "--arg-file", ":::", "::::", "{/.}", "Exit status"})
    CHECK_MESSAGE(r.out.find(option) != std::string::npos, option);
  const auto run_help = sh(dir, "$P run --help");
  CHECK(run_help.exit_code == 0);
  CHECK(run_help.out.find("--joblog") != std::string::npos);
}

TEST_CASE("Cli.Run.VersionIsTheProjectVersion") {
  TempDir dir;
  for (const char* flag : {"--version", "-V"}) {
    const auto r = sh(dir, std::string("$P ") + flag);
    CHECK(r.exit_code == 0);
    CHECK(r.out == "procpool " PROCPOOL_VERSION "\n");
  }
  CHECK(sh(dir, "$P --help").out.rfind("procpool " PROCPOOL_VERSION ": ", 0) == 0);
}

TEST_CASE("Cli.Run.TemplateReplacementStrings") {
  TempDir dir;
  const auto r = sh(dir, "$P run -j1 -k echo {} {.} {/} {//} {/.} {#} {%} ::: a.txt /x/y.tar.gz plain");
  CHECK(r.exit_code == 0);
  CHECK(r.out ==
        "a.txt a a.txt . a 1 1\n"
        "/x/y.tar.gz /x/y.tar y.tar.gz /x y.tar 2 1\n"
        "plain plain plain . plain 3 1\n");
  // {#} alone is a replacement string too: the argument is not appended.
  CHECK(sh(dir, "$P run -j1 -k echo {#} ::: a b").out == "1\n2\n");
}

TEST_CASE("Cli.Run.TemplateArgsAreQuoted") {
  TempDir dir;
  const auto r = sh(dir, "$P run -j1 -k echo ::: 'a  b' \"it's\" '$HOME' 'x;y' '*'");
  CHECK(r.exit_code == 0);
  CHECK(r.out == "a  b\nit's\n$HOME\nx;y\n*\n");
}

TEST_CASE("Cli.Run.MultipleSourcesAndPositional") {
  TempDir dir;
  write_file(dir / "nums.txt", "1\n2\n");
  const auto r = sh(dir, "$P run -j2 -k echo {2}-{1} ::: a b :::: nums.txt");
  CHECK(r.exit_code == 0);
  CHECK(r.out == "1-a\n2-a\n1-b\n2-b\n");
  const auto all = sh(dir, "$P run -j1 -k echo ::: x ::: y z");
  CHECK(all.out == "x y\nx z\n");
}

TEST_CASE("Cli.Run.ArgFileAndStdinArgs") {
  TempDir dir;
  write_file(dir / "args.txt", "alpha\nbeta\n");
  auto r = sh(dir, "$P run -j1 -k -a args.txt echo got");
  CHECK(r.out == "got alpha\ngot beta\n");
  r = sh(dir, "$P run -j1 -k echo arg:{}", "p\nq\n");
  CHECK(r.out == "arg:p\narg:q\n");
  r = sh(dir, "$P run -j1 -k -a - echo", "s\n");
  CHECK(r.out == "s\n");
}

TEST_CASE("Cli.Run.Colsep") {
  TempDir dir;
  write_file(dir / "rows.csv", "a,b,c\nd,e,f\n");
  auto r = sh(dir, "$P run -j1 -k --colsep , echo {3}{2}{1} :::: rows.csv");
  CHECK(r.out == "cba\nfed\n");
  r = sh(dir, "$P run -j1 -k --colsep '[;:]+' echo {2} ::: 'x;;y' 'u:v'");
  CHECK(r.out == "y\nv\n");
}

TEST_CASE("Cli.Run.EmptyTemplateRunsArgsAsCommands") {
  TempDir dir;
  const auto r = sh(dir, "$P run -j1 -k ::: 'echo a b' 'echo c | tr c C'");
  CHECK(r.out == "a b\nC\n");
}

TEST_CASE("Cli.Run.DirectExecMatchesShell") {
  // The same lines through direct exec and through --shell (always /bin/sh -c) give the same output
  // and statuses, including not-found programs, echo options and quotes.
  TempDir dir;
  write_file(dir / "noexec.sh", "echo should not run\n");
  write_file(dir / "script_without_shebang", "echo from script\n");
  ::chmod((dir / "script_without_shebang").c_str(), 0755);
  write_file(dir / "b.txt",
             "echo plain words\n"
             "echo 'single  quoted' \"double  quoted\"\n"
             "echo -n no newline\n"
             "echo -e 'a\\tb'\n"
             "true\n"
             "false\n"
             "printf '%s-%s\\n' x y\n"
             "no-such-command-procpool arg\n"
             "./noexec.sh\n"
             "./script_without_shebang\n"
             "cd /\n"
             "env FOO=1 sh -c 'echo $FOO'\n"
             "sh -c 'exit 7'\n");
  const auto direct = sh(dir, "$P run -j1 -k --joblog direct.log b.txt; echo rc=$?");
  const auto shell = sh(dir, "$P run -j1 -k --shell --joblog shell.log b.txt; echo rc=$?");
  CHECK(direct.out == shell.out);
  CHECK(direct.out.find("plain words\nsingle  quoted double  quoted\nno newline") != std::string::npos);
  CHECK(direct.out.find("from script") != std::string::npos);
  CHECK(direct.out.find("rc=4") != std::string::npos);  // false, not found, not executable, exit 7
  const auto direct_rows = joblog_rows(dir / "direct.log");
  const auto shell_rows = joblog_rows(dir / "shell.log");
  REQUIRE(direct_rows.size() == shell_rows.size());
  for (std::size_t i = 0; i < direct_rows.size(); ++i) {
    CHECK(direct_rows[i][6] == shell_rows[i][6]);  // Exitval
    CHECK(direct_rows[i][5] == shell_rows[i][5]);  // Receive
  }
}

TEST_CASE("Cli.Run.CrlfLongLinesInvalidUtf8") {
  TempDir dir;
  const std::string long_word(1024 * 1024, 'x');
  write_file(dir / "b.txt", "echo crlf\r\necho " + long_word + "\necho \xff\xfe-bytes\n");
  const auto r = sh(dir, "$P run -j2 -k b.txt > out.txt; echo rc=$?");
  CHECK(r.out == "rc=0\n");
  const std::string out = read_file(dir / "out.txt");
  CHECK(out == "crlf\n" + long_word + "\n\xff\xfe-bytes\n");
}

TEST_CASE("Cli.Run.HugeOutputAndClosedStdout") {
  TempDir dir;
  write_file(dir / "b.txt",
             "head -c 104857600 /dev/zero\n"
             "exec >&-; sleep 0.2; echo to-stderr >&2\n"
             "cat; echo read-stdin-rc=$?\n");
  const auto r = sh(dir, "$P run -j3 b.txt | wc -c; echo rc=$?");
  // 100 MiB + "read-stdin-rc=0\n" (16 bytes): stdin is /dev/null, so cat ends at once.
  CHECK(r.out == "104857616\nrc=0\n");
  CHECK(r.err.find("to-stderr") != std::string::npos);
}

TEST_CASE("Cli.Run.BadInputExits255") {
  TempDir dir;
  write_file(dir / "ok.txt", "echo ok\n");
  struct Case { const char* command; const char* message; };
  const Case cases[] = {
      {"$P run missing.txt", "cannot open 'missing.txt'"},
      {"$P run .", "is a directory"},
      {"$P run -j abc ok.txt", "--jobs"},
      {"$P run --timeout 5x ok.txt", "--timeout"},
      {"$P run --timeout -3 ok.txt", "--timeout"},
      {"$P run --halt later,fail=1 ok.txt", "--halt"},
      {"$P run --halt now,fail=0 ok.txt", "--halt"},
      {"$P run --retries x ok.txt", "--retries"},
      {"$P run --memfree 1Q ok.txt", "--memfree"},
      {"$P run --resume ok.txt", "--resume needs --joblog FILE or --results NAME"},
      {"$P run --resume-failed ok.txt", "need --joblog"},
      {"$P run --no-such-option ok.txt", "unknown option"},
      {"$P run --group --ungroup ok.txt", "exclude each other"},
      {"$P run echo :::: missing-args.txt", "cannot open 'missing-args.txt'"},
      {"$P frobnicate", "unknown command"},
  };
  for (const auto& c : cases) {
    const auto r = sh(dir, c.command);
    CHECK_MESSAGE(r.exit_code == 255, c.command);
    CHECK_MESSAGE(r.err.find(c.message) != std::string::npos, c.command, " -> ", r.err);
  }
  ::chmod((dir / "ok.txt").c_str(), 0);
  if (::geteuid() != 0) {  // root reads anything
    const auto r = sh(dir, "$P run ok.txt");
    CHECK(r.exit_code == 255);
    CHECK(r.err.find("Permission denied") != std::string::npos);
  }
}

TEST_CASE("Cli.Run.DryRunAndVerbose") {
  TempDir dir;
  auto r = sh(dir, "$P run --dry-run gzip {} ::: 'a b.txt' c.txt; ls");
  CHECK(r.exit_code == 0);
  CHECK(r.out == "gzip 'a b.txt'\ngzip c.txt\n");  // and nothing was created
  r = sh(dir, "$P run -j1 -k -v echo ::: x y");
  CHECK(r.out == "echo x\nx\necho y\ny\n");
}

TEST_CASE("Cli.Run.TagAndTagstring") {
  TempDir dir;
  auto r = sh(dir, "$P run -j1 -k --tag 'printf \"1\\n2\\n\"; echo {} >&2' ::: a b");
  CHECK(r.out == "a\t1\na\t2\nb\t1\nb\t2\n");
  CHECK(r.err == "a\ta\nb\tb\n");
  r = sh(dir, "$P run -j1 -k --tagstring '[{#}:{.}]' echo ::: f.txt");
  CHECK(r.out == "[1:f]\tf.txt\n");
  write_file(dir / "b.txt", "echo hi\n");
  r = sh(dir, "$P run --tag b.txt");
  CHECK(r.out == "echo hi\thi\n");
}

TEST_CASE("Cli.Run.Results") {
  TempDir dir;
  // --results-layout seq: procpool's own layout, the output printed as well.
  const auto r = sh(dir, "$P run -j2 --results-layout seq --results res 'echo out-{}; echo err-{} >&2' ::: a b");
  CHECK(r.exit_code == 0);
  CHECK(read_file(dir / "res/1/stdout") == "out-a\n");
  CHECK(read_file(dir / "res/1/stderr") == "err-a\n");
  CHECK(read_file(dir / "res/2/stdout") == "out-b\n");
  CHECK(read_file(dir / "res/2/cmd") == "echo out-b; echo err-b >&2\n");
  CHECK(testing::count_matching_lines(r.out, "^out-[ab]$") == 2);  // still printed
}

TEST_CASE("Cli.Run.JobEnvironmentAndStdinIsDevNull") {
  TempDir dir;
  const auto r = sh(dir, "$P run -j1 -k 'echo $PARALLEL_SEQ $PARALLEL_JOBSLOT; readlink /proc/self/fd/0' ::: a b",
                    "this must not reach the jobs\n");
  CHECK(r.out == "1 1\n/dev/null\n2 1\n/dev/null\n");
}

TEST_CASE("Cli.Run.JobsForms") {
  TempDir dir;
  // Each job reports how many jobs run at that moment, through a shared directory of markers.
  const std::string job = "'touch run.{#}; sleep 0.5; ls run.* | wc -l; rm run.{#}'";
  auto max_concurrency = [&](const std::string& jobs) {
    const auto r = sh(dir, "$P run -j " + jobs + " " + job + " ::: 1 2 3 4");
    REQUIRE(r.exit_code == 0);
    int best = 0;
    for (const auto& line : lines_of(r.out)) best = std::max(best, std::stoi(line));
    return best;
  };
  CHECK(max_concurrency("1") == 1);
  CHECK(max_concurrency("3") >= 2);
  CHECK(max_concurrency("3") <= 3);
  const auto cpus = static_cast<int>(std::min(4L, ::sysconf(_SC_NPROCESSORS_ONLN)));
  CHECK(max_concurrency("+1") <= std::min(4, cpus + 1));
  CHECK(max_concurrency("-100") == 1);     // never below 1
  CHECK(max_concurrency("50%") <= std::max(1, cpus / 2));
}

TEST_CASE("Cli.Run.StreamsInputBeforeItEnds") {
  TempDir dir;
  // The writer only sends the second line after the first job has run: procpool must start jobs
  // while its stdin is still open (it would deadlock until the 20 s limit otherwise).
  const auto r = sh(dir,
                    "{ echo 'touch started'; i=0; while [ ! -e started ] && [ $i -lt 200 ]; do sleep 0.05; "
                    "i=$((i+1)); done; echo 'echo second'; } | $P run -j1",
                    "", std::chrono::seconds(20));
  CHECK(r.exit_code == 0);
  CHECK(r.out == "second\n");
  CHECK(r.elapsed < std::chrono::seconds(9));
}

TEST_CASE("Cli.Run.MillionLineBatchInBoundedMemory") {
  TempDir dir;
  {
    std::ofstream batch(dir / "million.txt");
    for (int i = 0; i < 1000000; ++i) batch << "true\n";
  }
  Background bg(dir, {"run", "-j2", "--joblog", "log.tsv", "million.txt"});
  REQUIRE(eventually([&] { return joblog_rows(dir / "log.tsv").size() >= 500; }, 20000ms));
  long peak_kib = 0;
  std::ifstream status("/proc/" + std::to_string(bg.pid) + "/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) peak_kib = std::stol(line.substr(6));
  // A sanitizer build's shadow memory alone exceeds the bound: the bound holds for real builds.
  const std::string maps = read_file("/proc/" + std::to_string(bg.pid) + "/maps");
  const bool sanitized = maps.find("libasan") != std::string::npos || maps.find("libtsan") != std::string::npos;
  ::kill(bg.pid, SIGTERM);
  CHECK(bg.wait() == 255);
  CHECK(peak_kib > 0);
  if (sanitized) MESSAGE("sanitizer build: peak RSS ", peak_kib, " KiB, 10 MiB bound not applied");
  else CHECK(peak_kib <= 10 * 1024);  // the target: 10 MiB
}
