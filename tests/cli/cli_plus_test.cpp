// procpool run --plus's replacement strings side by side with GNU parallel (issue 15): the bash-like
// ones ({:-x} {:n} {:n:m} {#re} {##re} {%re} {%%re} {/re/s} {//re/s} {/#re/s} {/%re/s} {^re} {^^re}
// {,re} {,,re}, their patterns Perl regexes), positional or not, the job counts {##} {0#} {0%}, and
// {choose_k} {uniq}.
#include "cli_helpers.hpp"
#include "gnu_compare.hpp"

using namespace clitest;

namespace {

// Odd values: empty, blanks, quotes, shell characters, "0" (false in Perl: {:-x} replaces it), paths.
const std::string kOddValues =
    "'' ' ' \"a'b\" 'a b.c d' '\"q\"' x.tar.gz 0 00 A.b-C '$HOME' '*' 'aa  bb' /a/b/c 'Hello World'";

} // namespace

TEST_CASE("Cli.GnuPlus.BashLikeStrings") {
  TempDir dir;
  for (const std::string strings :
       {"'{:-D}' '{:1}' '{:1:3}' '{:3:9}' '{:99}' '{:9:1}'",
        "'{#a}' '{##a*}' '{#*/}' '{##*/}' '{##* }' '{#[a-z].}'",
        "'{%.*}' '{%%.*}' '{%/*}' '{%%/*}' '{%b*}' '{%%[^a]}'",
        "'{/ /_}' '{// /_}' '{/#a/Z}' '{/%c/Z}' '{//x*/-}' '{/\\./}' '{//[aeiou]/}'",
        "'{^a}' '{^^[a-z]}' '{,A}' '{,,[A-Z]}' '{^^l}' '{,,[HW]}'"}) {
    const std::string args = "-k -j1 --plus echo " + strings + " ::: " + kOddValues;
    check_same(run_both(dir, args), args);
  }
}

TEST_CASE("Cli.GnuPlus.PositionalStrings") {
  TempDir dir;
  for (const std::string strings : {"'{2:-D}' '{1:1}' '{2:1:2}' '{-1/ /_}' '{1^^.}' '{2%\\.*}' '{-2##*/}'",
                                    "'{1 :1}' '{3:-beyond}' '{-3#a}' '{1//a/}' '{2,,[A-Z]}'"}) {
    const std::string args = "-k -j1 --plus echo " + strings + " ::: " + kOddValues + " ::: 'Ab.C' ''";
    check_same(run_both(dir, args), args);
  }
  for (const std::string args : {"-k echo {-1} {-2} {-3} {-4} {-5} ::: a b ::: c d ::: e", "-k -N2 echo {-1} {-2} {-3} ::: a b c"})
    check_same(run_both(dir, args), "{-N} without --plus: " + args);
}

// {##} and {0#} read every job first; {0%} is as wide as the number of job slots.
TEST_CASE("Cli.GnuPlus.JobCounts") {
  TempDir dir;
  REQUIRE(sh(dir, "seq 11 > 11.txt; seq 1000 > 1000.txt").exit_code == 0);
  for (const std::string args :
       {"-k -j1 --plus echo {#}-{##}-{0#}-{0%}-{slot} :::: 11.txt", "-k -j12 --plus --dry-run echo {0%} ::: a",
        "-k -j1 --plus -N 3 echo {##} {0#} {} :::: 11.txt", "-k -j1 --plus echo {0#} ::: a b ::: 1 2 3 4 5",
        "-k -j1 --plus --tagstring '{0#}/{##}' echo {} :::: 11.txt", "-k -j3 --plus --tagstring 'x{0%}' echo ::: a",
        "-k -j1 --plus echo {##} {} < 11.txt"}) {
    check_same(run_both(dir, args), args);
  }
  // GNU parallel's width is 1+int(log(n)/log(10)) in floating point: 3 digits for 1000 jobs.
  const auto r = sh(dir, "$P run -k --plus --dry-run echo {0#} {##} :::: 1000.txt | sed -n '1p;999,1000p'");
  CHECK(r.out == "echo 001 1000\necho 999 1000\necho 1000 1000\n");
}

// What GNU parallel keeps as text; the strings inside -X's context, -I, the command's first word.
TEST_CASE("Cli.GnuPlus.TextAndContexts") {
  TempDir dir;
  for (const std::string args :
       {"-k -j1 --plus echo '{a}' '{:-}' '{:-{}}' '{%}' '{%%}' '{:x}' ::: '' a% 0",
        "-k -j1 --plus -X echo 'a{:-z}b' '{%.c}' ::: x '' y.c", "-k -j1 --plus -m echo '{#*.}' ::: a.b c.d.e",
        "-k -j1 --plus -I ,, echo ,, '{,,A}' '{}' ::: Aa", "-k -j1 --plus '{//x/ech}o' '{1}' ::: x1",
        "-k -j1 --plus 'echo {/e/E}; echo {:1}' ::: 'one two'"}) {
    check_same(run_both(dir, args), args);
  }
}

TEST_CASE("Cli.GnuPlus.Refusals") {
  TempDir dir;
  // A pattern Perl (and PCRE2) cannot compile: GNU parallel prints Perl's error and exits 25; procpool
  // refuses the command before any job.
  for (const std::string bad : {"{#[}", "{/a\\/b}", "{%(}"}) {
    const auto r = sh(dir, "$P run --plus echo '" + bad + "' ::: a");
    CHECK(r.exit_code == 255);
    CHECK(r.out.empty());
    CHECK(r.err.find("does not compile") != std::string::npos);
  }
  // --pipe's jobs are not known in advance (GNU parallel: "--pipe is incompatible with --eta/--bar/--shuf").
  for (const std::string args : {"--pipe --plus echo {##}", "--pipe --plus --tagstring {0#} cat"}) {
    const auto r = sh(dir, "seq 3 | $P run " + args);
    CHECK(r.exit_code == 255);
    CHECK(r.err.find("--pipe is incompatible with {##} and {0#}") != std::string::npos);
  }
  // Without --plus these are text.
  check_same(run_both(dir, "-k echo '{:-x}' '{#a}' '{##}' ::: a"), "without --plus");
}

// {choose_k} and {uniq}: the arguments, as {}; a job they rule out is not run, but logged with Exitval
// -2 and counted as failed, as GNU parallel does.
TEST_CASE("Cli.GnuPlus.SkippedJobs") {
  TempDir dir;
  for (const std::string args :
       {"-k --plus echo {choose_k} ::: a b c ::: a b c", "-k --plus echo {uniq} ::: a b '' ::: a b ''",
        "-k --plus echo '{#}' {uniq} {choose_k} ::: a b c ::: a b c ::: a b c",
        "-k -j1 --plus 'echo {choose_k}; exit 1' ::: a b ::: a b", "-k --plus -N2 echo {uniq} ::: a a b c"}) {
    check_same(run_both(dir, args), args);
  }
  const auto log = run_both(dir, "-k --plus --joblog - echo {choose_k} ::: a b ::: a b");
  CHECK(masked_joblog(log.pp.out) == masked_joblog(log.gnu.out));
  for (const std::string args : {"--plus echo {2uniq} ::: a", "--plus --tagstring {uniq} echo ::: a"})
    CHECK(sh(dir, "$P run " + args).exit_code == 255);
}
