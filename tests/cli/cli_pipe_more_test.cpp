// --pipe's companions side by side with GNU parallel (issue 15): --cat and --fifo ({} is a file or a
// FIFO holding the chunk), --round-robin (-j jobs given the chunks in turn), --rrs, --tee, --block-timeout, --bin.
#include "cli_helpers.hpp"
#include "gnu_compare.hpp"

#include <map>

using namespace clitest;

namespace {

/// A joblog without Starttime, JobRuntime and the Command (Seq, Send, Receive, Exitval...), rows in Seq order.
std::string joblog_sizes(const std::string& text) {
  std::map<std::string, std::string> rows;
  for (const auto& line : lines_of(text)) {
    const auto f = split_tabs(line);
    if (f.size() == 9) rows[f[0] == "Seq" ? "" : f[0]] = f[0] + " " + f[4] + " " + f[5] + " " + f[6] + " " + f[7] + "\n";
  }
  std::string out;
  for (const auto& [seq, row] : rows) out += row;
  return out;
}

} // namespace

TEST_CASE("Cli.GnuPipe.CatAndFifo") {
  TempDir dir;
  REQUIRE(sh(dir, "seq 100000 > in.txt; mkdir t").exit_code == 0);
  for (const std::string args :
       {"--pipe --block 100k --cat 'md5sum < {}' < in.txt", "--cat --block 100k 'md5sum < {}; exit 3' < in.txt",
        "--pipe --block 100k --fifo 'md5sum < {}' < in.txt", "--fifo -N 20000 'wc -l < {}; exit 2' < in.txt",
        "--pipe --block 100k --cat 'wc -c <' < in.txt", "--pipepart -a in.txt --block 100k --cat 'md5sum < {}'",
        "--pipepart -a in.txt --block 100k --fifo 'md5sum < {}'",
        "--pipe -N 30000 --cat 'cat {} {} | wc -l; echo {#}' < in.txt"}) {
    const std::string line = "-k " + args;
    check_same(run_both(dir, line), line);
  }
  // The files live in one directory of --tmpdir (or $TMPDIR), gone at the end; also a killed job's.
  const auto r = sh(dir, "$P run -k --tmpdir t --pipe -N 50000 --cat 'test -f {} && echo file; kill -9 $$' < in.txt; "
                         "ls -A t | wc -l");
  CHECK(r.out == "file\nfile\n0\n");
  const auto fifo = sh(dir, "TMPDIR=t $P run -k --pipe -N 50000 --fifo 'test -p {} && echo fifo; cat {} > /dev/null' < in.txt; "
                            "ls -A t | wc -l");
  CHECK(fifo.out == "fifo\nfifo\n0\n");
  const auto both = sh(dir, "$P run --pipe --cat --fifo cat < in.txt");
  CHECK(both.exit_code == 255);
  CHECK(both.err.find("--fifo cannot be combined with --cat") != std::string::npos);
}

TEST_CASE("Cli.GnuPipe.RoundRobin") {
  TempDir dir;
  REQUIRE(sh(dir, "seq 100000 > in.txt; (echo head; seq 30000) > h.txt").exit_code == 0);
  // With -k GNU parallel writes the chunks strictly in turn: chunk k to job k mod -j.
  for (const std::string args :
       {"--pipe --round-robin -j3 --block 10k md5sum < in.txt", "--pipe --round-robin -j5 -N 7 md5sum < in.txt",
        "--pipe --round-robin -j4 'wc -l' < in.txt", "--pipe --round-robin -j4 --block 10k --header : md5sum < h.txt",
        "--pipepart -a in.txt --round-robin -j3 md5sum", "--pipe --round-robin -j4 -N 3 'wc -l' < h.txt"}) {
    const std::string line = "-k " + args;
    check_same(run_both(dir, line), line);
  }
  const auto log = run_both(dir, "-k --pipe --round-robin -j3 --block 10k --joblog - 'wc -l' < in.txt");
  CHECK(joblog_sizes(log.pp.out) == joblog_sizes(log.gnu.out));  // Send: all the job's chunks
  // Without -k the chunks go to whichever job takes one first: every line once, -j jobs.
  const auto free = sh(dir, "seq 200000 | $P run --pipe --round-robin -j3 --block 10k 'wc -l' | "
                            "awk '{s+=$1; n++} END {print s, n}'");
  CHECK(free.out == "200000 3\n");
  // A job that stops reading loses its chunks, the others go on.
  const auto stop = sh(dir, "$P run -k --pipe --round-robin -j2 --block 10k 'head -1' < in.txt");
  CHECK(stop.exit_code == 0);
  CHECK(lines_of(stop.out).size() == 2);
  CHECK(sh(dir, "$P run --round-robin echo ::: a").exit_code == 255);  // needs --pipe (GNU ignores it)
  CHECK(sh(dir, "$P run --pipe --round-robin --retries 2 cat < in.txt").exit_code == 255);
}

// --rrs: GNU parallel's remove_rec_sep on each chunk (not on the header); the joblog's Send is the
// chunk's size after it.
TEST_CASE("Cli.GnuPipe.RemoveRecordSeparators") {
  TempDir dir;
  REQUIRE(sh(dir, "seq 20 > s.txt; seq 100000 > in.txt").exit_code == 0);
  for (const std::string args :
       {"--pipe -N2 --rrs 'cat; echo' < s.txt", "--pipe -N2 --rrs --recstart 2 'cat; echo' < s.txt",
        "--pipe -N2 --rrs --recstart 1 --recend '\\n' 'cat; echo' < s.txt",
        "--pipe -N3 --rrs --recend 5 'cat; echo END' < s.txt", "--pipe -N2 --rrs --header : 'cat; echo END' < s.txt",
        "--pipe --block 10 --rrs 'cat; echo END' < s.txt", "--pipe --block 10 --rrs --round-robin -j2 'cat; echo' < s.txt",
        "--pipe --block 100k --rrs --recend 0 md5sum < in.txt"}) {
    const std::string line = "-k " + args;
    check_same(run_both(dir, line), line);
  }
  const auto log = run_both(dir, "-k --pipe --block 100k --rrs --joblog - md5sum < in.txt");
  CHECK(joblog_sizes(log.pp.out) == joblog_sizes(log.gnu.out));
  CHECK(sh(dir, "$P run --pipepart -a in.txt --rrs cat").exit_code == 255);  // GNU parallel ignores it there
  CHECK(sh(dir, "$P run --rrs echo ::: a").exit_code == 255);
}

// --tee: one job per argument, every one given all of stdin (-j defaults to 0); bounded memory, so a
// slow job holds the others back.
TEST_CASE("Cli.GnuPipe.Tee") {
  TempDir dir;
  REQUIRE(sh(dir, "seq 100000 > in.txt; (echo h; seq 3) > h.txt").exit_code == 0);
  for (const std::string args :
       {"--tee --pipe wc ::: -l -c < in.txt", "--tee --pipe 'wc {1} {2}' ::: -l -c ::: -w < in.txt",
        "--tee --pipe 'echo {#}; md5sum; exit 2' ::: a b c < in.txt",
        "--tee --pipe --block 10k md5sum ::: a b c d e f g h < in.txt",
        "--tee --pipe --header : 'echo {}; cat' ::: a b < h.txt", "--tee --pipe 'head -1' ::: a b < in.txt"}) {
    const std::string line = "-k " + args;
    check_same(run_both(dir, line), line);
  }
  const auto log = run_both(dir, "-k --tee --pipe --joblog - 'wc -l; echo {}' ::: a b < in.txt");
  CHECK(joblog_sizes(log.pp.out) == joblog_sizes(log.gnu.out));  // Send is 0, as GNU parallel's
  const auto many = sh(dir, "seq 1000000 | $P run --tee --pipe --block 10k md5sum ::: $(seq 12) | uniq -c");
  const auto once = sh(dir, "seq 1000000 | md5sum");
  CHECK(many.out == "     12 " + once.out);
  // GNU parallel's message (not run side by side: GNU parallel leaves its tee process behind there).
  const auto few = sh(dir, "$P run --tee --pipe -j1 cat ::: a b < in.txt");
  CHECK(few.exit_code == 255);
  CHECK(few.err.find("--tee requires --jobs to be higher. Try --jobs 0.") != std::string::npos);
  CHECK(sh(dir, "$P run --tee --pipe cat < in.txt").exit_code == 255);  // no arguments: no job to give it to
}

// --block-timeout: a block not full after the timeout goes to a job up to its last record end.
TEST_CASE("Cli.GnuPipe.BlockTimeout") {
  TempDir dir;
  for (const std::string input : {"(echo a; sleep 2; echo b)", "(printf 'a\\nb'; sleep 2; echo c)"}) {
    const std::string args = "-k --pipe --block-timeout 1 'cat; echo END'";
    const Both b{sh(dir, input + " | parallel --will-cite " + args), sh(dir, input + " | $P run " + args)};
    check_same(b, input);
  }
  CHECK(sh(dir, "$P run --pipe --bt 0.5 cat < /dev/null").exit_code == 255);  // at least 1, as GNU parallel
  CHECK(sh(dir, "$P run --bt 2 echo ::: a").exit_code == 255);                 // needs --pipe
}

// --bin COL: a line goes to job (column COL's value mod -j), -j jobs whether their bin gets lines or
// not; Perl's numbers and % (-1 goes to job 2 of 3, x and 0 to job 3).
TEST_CASE("Cli.GnuPipe.Bin") {
  TempDir dir;
  REQUIRE(sh(dir, "printf '1,a\\n2,b\\n3,c\\n4,d\\n-1,e\\nx,f\\n2.9,g\\n' > c.txt; printf 'a 1\\nb  2\\nc 3 x\\n' > s.txt; "
                  "printf '1\\ta\\n2\\tb\\n' > t.txt; seq 100000 > in.txt").exit_code == 0);
  for (const std::string args :
       {"--pipe --bin 1 -j3 'echo JOB; sort -n | tr \"\\n\" \" \"; echo' < in.txt",
        "--pipe --bin 1 -j3 'echo JOB; sort' < c.txt", "--pipe --bin 2 -j2 --colsep '\\t' 'echo JOB; sort' < t.txt",
        "--pipe --bin 2 -j2 --colsep ' +' 'echo JOB; sort' < s.txt", "--pipe --bin 1 -j4 --block 10k 'sort -n | md5sum' < in.txt"}) {
    const std::string line = "-k " + args;
    check_same(run_both(dir, line), line);
  }
  const auto log = run_both(dir, "-k --pipe --bin 1 -j3 --joblog - 'wc -l' < in.txt");
  CHECK(joblog_sizes(log.pp.out) == joblog_sizes(log.gnu.out));  // Send is 0, as GNU parallel's
  CHECK(sh(dir, "$P run --pipe --bin name cat < in.txt").exit_code == 255);  // column names: not supported
  CHECK(sh(dir, "$P run --bin 1 echo ::: a").exit_code == 255);               // needs --pipe
}
