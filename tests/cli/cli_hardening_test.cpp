// procpool run against hostile or odd surroundings (issue 10): links planted under --results, a full
// disk, closed stdout/stderr, a low descriptor limit, huge and nonsensical option values, joblogs that
// are not regular files.
#include "cli_helpers.hpp"

using namespace clitest;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

int occurrences(const std::string& text, const std::string& part) {
  int n = 0;
  for (auto pos = text.find(part); pos != std::string::npos; pos = text.find(part, pos + 1)) ++n;
  return n;
}

/// A private mount namespace and a tmpfs need root and unshare(1); CI runs the suite as root.
bool can_mount_tmpfs(const TempDir& dir) {
  if (::geteuid() != 0) return false;
  return sh(dir, "unshare -m sh -c 'mkdir -p probe && mount -t tmpfs -o size=64k tmpfs probe'", "", 20s).exit_code == 0;
}

} // namespace

// Item 5: a symlink planted at DIR/SEQ/stdout or at DIR/SEQ is refused, never written through.
TEST_CASE("Cli.Results.RefusesPlantedLinks") {
  TempDir dir;
  write_file(dir / "victim", "precious\n");
  fs::create_directories(dir / "res/1");
  fs::create_symlink(dir / "victim", dir / "res/1/stdout");
  auto r = sh(dir, "$P run --results-layout seq --results res echo ::: hi", "", 20s);
  CHECK(r.exit_code == 255);
  CHECK_MESSAGE(contains(r.err, "'res/1/stdout' is a symbolic link"), r.err);
  CHECK(read_file(dir / "victim") == "precious\n");
  CHECK(fs::is_symlink(dir / "res/1/stdout"));

  // A symlinked DIR/SEQ: job 1 runs, job 2's directory leads elsewhere and is refused.
  fs::remove_all(dir / "res");
  fs::create_directories(dir / "res");
  fs::create_directories(dir / "elsewhere");
  fs::create_directory_symlink(dir / "elsewhere", dir / "res/2");
  r = sh(dir, "$P run -j1 --joblog log.tsv --results-layout seq --results res echo ::: a b", "", 20s);
  CHECK(r.exit_code == 255);
  CHECK_MESSAGE(contains(r.err, "'res/2' is a symbolic link"), r.err);
  CHECK(fs::is_empty(dir / "elsewhere"));
  CHECK(read_file(dir / "res/1/stdout") == "a\n");
  CHECK(joblog_seqs(dir / "log.tsv") == std::set<long>{1});  // job 2 never ran: --resume runs it

  // A hard link to someone's file would be truncated through: refused too.
  fs::remove_all(dir / "res");
  fs::create_directories(dir / "res/1");
  fs::create_hard_link(dir / "victim", dir / "res/1/stderr");
  r = sh(dir, "$P run --results-layout seq --results res echo ::: hi", "", 20s);
  CHECK(r.exit_code == 255);
  CHECK_MESSAGE(contains(r.err, "'res/1/stderr' has 2 hard links"), r.err);
  CHECK(read_file(dir / "victim") == "precious\n");
}

// Item 5: existing regular result files are overwritten, as GNU parallel's "+>" open does.
TEST_CASE("Cli.Results.OverwritesExistingRegularFiles") {
  TempDir dir;
  fs::create_directories(dir / "res/1");
  write_file(dir / "res/1/stdout", "an older and much longer output\n");
  write_file(dir / "res/1/cmd", "an older and much longer command\n");
  const auto r = sh(dir, "$P run --results-layout seq --results res echo ::: hi", "", 20s);
  CHECK(r.exit_code == 0);
  CHECK(read_file(dir / "res/1/stdout") == "hi\n");
  CHECK(read_file(dir / "res/1/cmd") == "echo hi\n");
}

// Item 20: a full disk under --results is reported with the path and the error, exit 255.
TEST_CASE("Cli.Results.FullDiskIsReported") {
  TempDir dir;
  if (!can_mount_tmpfs(dir)) {
    WARN_MESSAGE(false, "skipped: needs root and unshare -m to mount a small tmpfs");
    return;
  }
  // Full before the job: its cmd file cannot be written (it used to be left empty, the job run, and
  // its failure to write its output reported nowhere).
  auto r = sh(dir,
              "export P && mkdir full && unshare -m sh -c 'mount -t tmpfs -o size=64k tmpfs full && "
              "{ dd if=/dev/zero of=full/fill bs=4k 2>/dev/null; "
              "$P run -j1 --joblog log.tsv --results-layout seq --results full/r echo ::: a b; }'",
              "", 30s);
  CHECK(r.exit_code == 255);
  CHECK_MESSAGE(contains(r.err, "--results: cannot write 'full/r/1/cmd': No space left on device"), r.err);
  CHECK(joblog_rows(dir / "log.tsv").empty());

  // Full while the job writes: procpool writes the files, sees ENOSPC, and says so.
  r = sh(dir,
         "export P && mkdir full2 && unshare -m sh -c 'mount -t tmpfs -o size=64k tmpfs full2 && "
         "$P run -j1 --joblog log2.tsv --results-layout seq --results full2/r \"head -c 200000 /dev/zero; : {}\" ::: a b'",
         "", 30s);
  CHECK(r.exit_code == 255);
  CHECK_MESSAGE(contains(r.err, "job 1: --results: cannot write 'full2/r/1/stdout': No space left on device"), r.err);
  CHECK(r.out.size() == 200000);  // still printed
  CHECK(joblog_rows(dir / "log2.tsv").empty());  // results incomplete: not logged, --resume runs it again
}

// Item 10: a timeout too long for the clock is no timeout, not an instant one.
TEST_CASE("Cli.Limits.HugeDurationsSaturate") {
  TempDir dir;
  for (const std::string timeout : {"1e12", "200000d", "1e300"}) {
    const auto r = sh(dir, "$P run --timeout " + timeout + " --joblog log.tsv echo ::: ok", "", 20s);
    CHECK_MESSAGE(r.exit_code == 0, timeout, ": ", r.err);
    CHECK(r.out == "ok\n");
    CHECK(!contains(r.err, "timed out"));
    const auto rows = joblog_rows(dir / "log.tsv");
    REQUIRE(rows.size() == 1);
    CHECK(rows[0][6] == "0");
    CHECK(rows[0][7] == "0");
  }
  // --delay 1e10 holds the second job back (it used to start at once).
  write_file(dir / "b.txt", "echo 1\necho 2\n");
  Background bg(dir, {"run", "-j2", "--delay", "1e10", "--joblog", "delay.tsv", "b.txt"});
  CHECK(eventually([&] { return joblog_seqs(dir / "delay.tsv") == std::set<long>{1}; }));
  std::this_thread::sleep_for(300ms);
  CHECK(joblog_seqs(dir / "delay.tsv") == std::set<long>{1});
  ::kill(bg.pid, SIGTERM);
  CHECK(bg.wait() == 255);
}

// Items 10 and 21: nonsense values are refused with a message naming the option.
TEST_CASE("Cli.Limits.BadValuesAreRefused") {
  TempDir dir;
  write_file(dir / "ok.txt", "echo ok\n");
  struct Case { const char* command; const char* message; };
  const Case cases[] = {
      {"$P run --memfree 99999999999999T ok.txt", "--memfree: '99999999999999T' is too large"},
      {"$P run --memfree 16E ok.txt", "--memfree"},
      {"$P run --memfree -1k ok.txt", "is negative"},
      {"$P run --memfree nan ok.txt", "is not a number"},
      {"$P run --memfree 1e400 ok.txt", "is out of range"},
      {"$P run --timeout nan ok.txt", "--timeout: 'nan' is not a number"},
      {"$P run --timeout inf ok.txt", "--timeout"},
      {"$P run --delay -1 ok.txt", "--delay: '-1' is negative"},
      {"$P run --delay 1e999 ok.txt", "--delay: '1e999' is out of range"},
      {"$P run -j '' ok.txt", "--jobs: empty value"},
      {"$P run --jobs '' ok.txt", "--jobs: empty value"},
      {"$P run --timeout '' ok.txt", "--timeout: empty value"},
      {"$P run --joblog '' ok.txt", "--joblog: empty value"},
      {"$P run --results '' ok.txt", "--results: empty value"},
      {"$P run --memfree '' ok.txt", "--memfree: empty value"},
      {"$P run -j 1e30% ok.txt", "--jobs: '1e30%' is too many"},
      {"$P run -j +99999999999999999999 ok.txt", "is out of range"},
      {"$P run -j +9223372036854775807 ok.txt", "is too many"},
  };
  for (const auto& c : cases) {
    const auto r = sh(dir, c.command, "", 20s);
    CHECK_MESSAGE(r.exit_code == 255, c.command);
    CHECK_MESSAGE(contains(r.err, c.message), c.command, " -> ", r.err);
    CHECK_MESSAGE(r.out.empty(), c.command);
  }
}

// Item 21: --memfree above the machine's memory would wait forever: say so, once.
TEST_CASE("Cli.Limits.MemfreeAboveTotalMemoryWarnsOnce") {
  TempDir dir;
  Background bg(dir, {"run", "--memfree", "1P", "touch ran", ":::", "x"});
  CHECK(eventually([&] { return contains(read_file(dir / "bg.out.err"), "more than this machine's"); }));
  std::this_thread::sleep_for(300ms);  // several re-checks of MemAvailable: still one warning
  ::kill(bg.pid, SIGTERM);
  CHECK(bg.wait() == 255);
  CHECK(occurrences(read_file(dir / "bg.out.err"), "--memfree") == 1);
  CHECK(!fs::exists(dir / "ran"));
}

// Item 21: a joblog must be a regular file; without --resume a pipe or a terminal is a stream.
TEST_CASE("Cli.Joblog.NonRegularFiles") {
  TempDir dir;
  auto r = sh(dir, "$P run --joblog /dev/zero echo ::: ok", "", 20s);
  CHECK(r.exit_code == 255);
  CHECK_MESSAGE(contains(r.err, "joblog '/dev/zero' is not a regular file, a pipe or a terminal"), r.err);
  CHECK(r.out.empty());
  r = sh(dir, "$P run --joblog /dev/zero --resume echo ::: ok", "", 20s);  // used to read zeros forever
  CHECK(r.exit_code == 255);
  r = sh(dir, "$P run --joblog . echo ::: ok", "", 20s);
  CHECK(r.exit_code == 255);

  // /dev/stdout on a pipe gets the log as a stream, as with GNU parallel (a job's output, then its
  // joblog line); --resume cannot read it.
  r = sh(dir, "$P run -j1 --joblog /dev/stdout echo ::: ok | cat", "", 20s);
  auto lines = lines_of(r.out);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].rfind("Seq\tHost\t", 0) == 0);
  CHECK(lines[1] == "ok");
  CHECK(split_tabs(lines[2]).at(8) == "echo ok");
  if (std::system("command -v parallel >/dev/null 2>&1") == 0) {
    const auto gnu = sh(dir, "parallel -j1 --joblog /dev/stdout echo ::: ok | cat", "", 60s);
    CHECK(lines_of(gnu.out).size() == 3);
    CHECK(lines_of(gnu.out).at(0) == lines[0]);
    CHECK(lines_of(gnu.out).at(1) == lines[1]);
  }
  r = sh(dir, "$P run --joblog /dev/stdout --resume echo ::: ok | cat", "", 20s);
  CHECK(contains(r.err, "--resume needs"));
  CHECK(r.out.empty());

  // A FIFO: the open waits for its reader, then the log streams through.
  REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
  r = sh(dir, "{ cat fifo > from-fifo & } && $P run --joblog fifo echo ::: ok; st=$?; wait; exit $st", "", 20s);
  CHECK(r.exit_code == 0);
  CHECK(lines_of(read_file(dir / "from-fifo")).size() == 2);
}

// Item 16: with stdout or stderr closed, the joblog must not become the jobs' output.
TEST_CASE("Cli.Descriptors.ClosedStdoutOrStderr") {
  TempDir dir;
  write_file(dir / "b.txt", "echo out1\necho err1 >&2\necho out2; echo err2 >&2\n");
  for (const std::string redirect : {">&-", "2>&-", ">&- 2>&-", "<&-"}) {
    CAPTURE(redirect);
    auto r = sh(dir, "$P run -j1 --joblog log.tsv b.txt " + redirect, "", 20s);
    CHECK(r.exit_code == 0);
    const std::string log = read_file(dir / "log.tsv");
    CHECK_MESSAGE(testing::count_matching_lines(log, "^(out|err)[12]$") == 0, log);  // the jobs' output
    CHECK(joblog_seqs(dir / "log.tsv") == std::set<long>{1, 2, 3});
    r = sh(dir, "$P run -j1 --joblog log.tsv --resume b.txt " + redirect, "", 20s);
    CHECK(r.exit_code == 0);
    CHECK(joblog_rows(dir / "log.tsv").size() == 3);  // all done: nothing ran again
  }
}

// Item 17: more slots than descriptors allow: the soft limit is raised to the hard one, the slots
// are capped with a warning (as GNU parallel does), and the run finishes.
TEST_CASE("Cli.Descriptors.LowUlimitCapsSlots") {
  TempDir dir;
  auto r = sh(dir, "ulimit -n 256 && $P run -j 0 --joblog log.tsv 'sleep 0.1; : {}' ::: $(seq 300)", "", 90s);
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  CHECK(contains(r.err, "only enough file descriptors to run"));
  CHECK(joblog_rows(dir / "log.tsv").size() == 300);
  if (std::system("command -v parallel >/dev/null 2>&1") == 0) {
    const auto gnu = sh(dir, "ulimit -n 256 && parallel -j 0 'true {}' ::: $(seq 100)", "", 90s);
    CHECK(gnu.exit_code == 0);
    CHECK(contains(gnu.err, "Only enough file handles"));
  }

  // A low soft limit under a high hard limit: raised for procpool, not for the jobs.
  const auto hard = sh(dir, "ulimit -Hn", "", 20s);
  if (hard.out != "unlimited\n" && std::stol(hard.out) < 1024) return;
  r = sh(dir, "ulimit -Sn 64 && $P run -j 60 'sleep 0.3; ulimit -Sn; : {}' ::: $(seq 60)", "", 60s);
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  CHECK(!contains(r.err, "only enough"));
  CHECK(testing::count_matching_lines(r.out, "^64$") == 60);
}

// GNU parallel's --results layout: an argument never leads the files outside the directory the name
// starts in (GNU parallel's would write there), and links on the way are refused as in the seq layout.
TEST_CASE("Cli.Results.GnuLayoutStaysBeneathItsDirectory") {
  TempDir dir;
  fs::create_directories(dir / "inner");
  // Values are escaped (/ is \_), and `..` climbs at most out of its own column name.
  auto r = sh(dir, "$P run -j1 --results res echo ::: ../x /abs ..", "", 20s);
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  CHECK(read_file(dir / "res/1/..\\_x/stdout") == "../x\n");
  CHECK(read_file(dir / "res/1/\\_abs/stdout") == "/abs\n");
  CHECK(read_file(dir / "res/stdout") == "..\n");
  // A header name or a templated value that climbs out is refused: nothing written, exit 255.
  for (const std::string args : {"--header : --results h echo ::: .. v", "--results 'inner/t/{}' echo ::: ../../x",
                                  "--results 'inner/{}/' echo ::: ..", "--results '{}' echo ::: \"$PWD/abs\""}) {
    r = sh(dir, "$P run -j1 " + args, "", 20s);
    CHECK_MESSAGE(r.exit_code == 255, args);
    CHECK_MESSAGE((contains(r.err, "leads outside") || contains(r.err, "is an absolute path")), r.err);
  }
  CHECK(!fs::exists(dir / "x"));
  CHECK(!fs::exists(dir / "inner/seq"));
  CHECK(!fs::exists(dir / "abs"));
  CHECK(!fs::exists(dir / "v"));
  // A link planted on the way or at a file is refused, never written through.
  write_file(dir / "victim", "precious\n");
  fs::create_directories(dir / "links/1");
  fs::create_directories(dir / "target");
  fs::create_directory_symlink(dir / "target", dir / "links/1/a");
  r = sh(dir, "$P run --results links echo ::: a", "", 20s);
  CHECK(r.exit_code == 255);
  CHECK_MESSAGE(contains(r.err, "'links/1/a' is a symbolic link"), r.err);
  CHECK(fs::is_empty(dir / "target"));
  fs::create_directories(dir / "t");
  fs::create_symlink(dir / "victim", dir / "t/b.err");
  r = sh(dir, "$P run --results 't/{}' echo ::: b", "", 20s);
  CHECK(r.exit_code == 255);
  CHECK_MESSAGE(contains(r.err, "'t/b.err' is a symbolic link"), r.err);
  CHECK(read_file(dir / "victim") == "precious\n");
}
