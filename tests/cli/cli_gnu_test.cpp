// procpool run side by side with GNU parallel (issue 15): the same arguments through both, comparing
// stdout, exit status and joblogs (timing columns masked). GNU parallel comes from
// scripts/install-deps.sh; these tests require it.
#include "cli_helpers.hpp"
#include "gnu_compare.hpp"

#include <algorithm>
#include <map>
#include <regex>

using namespace clitest;

TEST_CASE("Cli.Gnu.LineBufferNeverCutsALongLine") {
  TempDir dir;
  const std::string args =
      "--lb -j2 ::: 'head -c 3000000 /dev/zero | tr \"\\0\" x; echo' "
      "'for i in $(seq 300); do echo short$i; sleep 0.002; done'";
  const auto b = run_both(dir, args);
  for (const auto* r : {&b.gnu, &b.pp}) {
    const auto lines = lines_of(r->out);
    CHECK(lines.size() == 301);
    CHECK(std::count_if(lines.begin(), lines.end(), [](const std::string& l) {
            return l.size() == 3000000 && l.find_first_not_of('x') == std::string::npos;
          }) == 1);
    CHECK(std::count_if(lines.begin(), lines.end(), [](const std::string& l) {
            return l.rfind("short", 0) == 0 && l.size() <= 8;
          }) == 300);
  }
}

TEST_CASE("Cli.Gnu.LinkedSources") {
  TempDir dir;
  write_file(dir / "n.txt", "1\n2\n");
  // The template with :::+ runs the linked pairs, not every combination.
  const auto pairs = sh(dir, "$P run -k echo {1}{2} ::: a b :::+ 1 2");
  CHECK(pairs.out == "a1\nb2\n");
  for (const std::string args :
       {"-k echo {1}{2} ::: a b :::+ 1 2", "-k echo ::: a b c :::+ 1 2", "-k echo ::: a b :::+ 1 2 3",
        "-k echo ::: a b :::+ 1 2 ::: x y :::+ 7 8 9", "-k echo :::+ a b ::: 1 2",
        "-k --link echo ::: a b ::: 1 2 3 ::: x", "-k --xapply echo ::: a b c ::: 1",
        "-k --link echo ::: a b :::+ 1 2 3 ::: x", "-k echo ::: a b c ::::+ n.txt", "-k echo :::: n.txt ::::+ n.txt",
        "-k -a n.txt --link echo ::: a b c"})
    check_same(run_both(dir, args), args);
}

TEST_CASE("Cli.Gnu.PerlExpressionsAreRefused") {
  TempDir dir;
  for (const std::string args : {"echo '{= s/a/b/ =}' ::: a", "--tagstring '{=uc=}' echo ::: a"}) {
    const auto r = sh(dir, "$P run " + args);
    CHECK(r.exit_code == 255);
    CHECK(r.out.empty());
    CHECK(r.err.find("{= perl expression =} is not supported") != std::string::npos);
  }
}

TEST_CASE("Cli.Gnu.ReplacementStringAsTheCommand") {
  TempDir dir;
  for (const std::string args :
       {"{} ::: 'echo a'", "'{} x' ::: 'echo a'", "{1} ::: 'echo a'", "-k '{} {#}' ::: 'echo a' 'echo b'",
        "'{}' ::: 'echo a; echo b'", "-k echo {} ::: 'a  b' '$HOME'", "'x={}; echo $x' ::: 'a b'",
        "{.} ::: 'echo a.b'", "-k {} ::: 'echo a' ::: b"})
    check_same(run_both(dir, args), args);
}

TEST_CASE("Cli.Gnu.PathReplacements") {
  TempDir dir;
  const std::string args =
      "-k echo '[{//}] [{/}] [{.}] [{/.}]' ::: dir/ a/b/ / a//b //x .bashrc dir/.x a.b/c x. "
      "/data/run.tar.gz plain ''";
  check_same(run_both(dir, args), args);
}

TEST_CASE("Cli.Gnu.HaltExitStatuses") {
  TempDir dir;
  for (const std::string halt :
       {"now,fail=1", "now,fail=2", "soon,fail=2", "soon,fail=30%", "now,success=50%", "soon,fail=90%",
        "soon,done=2", "now,done=1", "soon,success=3", "1", "2", "-1", "20%", "soon,fail=10%"}) {
    const std::string args = "-j1 --halt " + halt + " 'echo {}; exit {}' ::: 0 3 4 0 5 0 0 0 0 0";
    check_same(run_both(dir, args), args);
  }
  // A job killed by --timeout that triggers --halt now,fail=1: 255 in both.
  const auto b = run_both(dir, "--timeout 0.5 --halt now,fail=1 sleep ::: 5");
  check_same(b, "timeout and halt");
  CHECK(b.pp.exit_code == 255);
}

TEST_CASE("Cli.Gnu.BatchLinesNumberedAsGnu") {
  TempDir dir;
  write_file(dir / "b.txt", "echo a\n\n# c\necho b\n   \necho c\n#x\necho d\n");
  const auto gnu = sh(dir, "parallel --will-cite -j1 --joblog gnu.tsv < b.txt", "", 90s);
  const auto pp = sh(dir, "$P run -j1 --joblog pp.tsv b.txt");
  CHECK(pp.out == gnu.out);
  // GNU parallel runs and logs the blank and comment lines as (empty) commands; procpool skips
  // them but gives them their numbers, so every real command has the same Seq in both joblogs.
  std::string gnu_real;
  for (const auto& line : lines_of(masked_joblog(read_file(dir / "gnu.tsv")))) {
    const auto f = split_tabs(line);
    const auto first = f.back().find_first_not_of(" \t");
    if (first != std::string::npos && f.back()[first] != '#') gnu_real += line + "\n";
  }
  CHECK(masked_joblog(read_file(dir / "pp.tsv")) == gnu_real);
  // --resume across the tools: GNU parallel did the first 4 lines, procpool resumes with the rest.
  REQUIRE(sh(dir, "head -n 4 b.txt | parallel --will-cite -j1 --joblog both.tsv", "", 90s).exit_code == 0);
  const auto resumed = sh(dir, "$P run -j1 --joblog both.tsv --resume b.txt");
  CHECK(resumed.out == "c\nd\n");
}

TEST_CASE("Cli.Gnu.JoblogToStdoutAndTimeoutZero") {
  TempDir dir;
  auto b = run_both(dir, "-j1 --joblog - echo ::: a b");
  CHECK(b.pp.exit_code == 0);
  CHECK(masked_joblog(b.pp.out) == masked_joblog(b.gnu.out));
  CHECK(lines_of(b.pp.out).at(1) == "a");  // a job's output, then its joblog line
  check_same(run_both(dir, "-k --timeout 0 'sleep 0.2; echo {}' ::: a b"), "--timeout 0");
  CHECK(sh(dir, "$P run --joblog - --resume echo ::: a").exit_code == 255);
}

TEST_CASE("Cli.Gnu.CarriageReturnsInArguments") {
  TempDir dir;
  write_file(dir / "cr.txt", "x\r\ny\r\n");
  for (const std::string args :
       {"-k echo {}: :::: cr.txt", "-k -a cr.txt echo {}:", "-k echo {}: ::: a :::: cr.txt"})
    check_same(run_both(dir, args), args);
  check_same(run_both(dir, "-k echo {}:", "x\r\ny\r\n"), "stdin");
}

TEST_CASE("Cli.Gnu.ParallelEnvironmentVariable") {
  TempDir dir;
  check_same(run_both(dir, "echo ::: a b", "", "PARALLEL='-k --tag' "), "$PARALLEL");
  check_same(run_both(dir, "-j1 echo ::: a b", "", "PARALLEL='--tagstring \"<{}>\"' "), "$PARALLEL quoted");
}

TEST_CASE("Cli.Gnu.ColsepPerlRegexAndTrim") {
  TempDir dir;
  write_file(dir / "t.tsv", "a\tb\tc\n\tx\t\n");
  for (const std::string args :
       {"-k --colsep '\\t' echo '[{1}] [{2}] [{3}]' :::: t.tsv", "--colsep '\\s+' echo {2} ::: 'a   b'",
        "--colsep '\\d' echo {2} ::: a1b", "--colsep '[\\d,]' echo {2} {3} ::: a1b,c",
        "--colsep , echo '[{1}] [{2}]' ::: ' a , b '", "--colsep , echo '[{}]' ::: ' a , b '",
        "--colsep '\\|' echo {2} ::: 'a|b'", "--colsep ',+' echo '{1}-{2}-{3}' ::: 'a,,b,'"})
    check_same(run_both(dir, args), args);
}

TEST_CASE("Cli.Gnu.HangupFinishesRunningJobs") {
  require_gnu();
  for (const std::string tool : {"gnu", "pp"}) {
    TempDir dir;
    std::vector<std::string> args = {"-j2", "--joblog", "log.tsv", "touch started.{}; sleep 1; echo {}", ":::",
                                     "1", "2", "3", "4", "5", "6"};
    std::unique_ptr<BackgroundProgram> bg;
    if (tool == "gnu") {
      args.insert(args.begin(), {"parallel", "--will-cite"});
      bg = std::make_unique<BackgroundProgram>(dir, args, "out");
    } else {
      args.insert(args.begin(), "run");
      bg = std::make_unique<Background>(dir, args, "out");
    }
    REQUIRE(eventually([&] { return fs::exists(dir / "started.2"); }, 30000ms));
    ::kill(bg->pid, SIGHUP);
    CHECK(bg->wait(60s) == 0);  // the running jobs finished and succeeded; nothing else started
    CHECK(joblog_seqs(dir / "log.tsv") == std::set<long>{1, 2});
    CHECK(lines_of(read_file(dir / "out")).size() == 2);
  }
}

TEST_CASE("Cli.Gnu.ClosedStdoutDiesOfSigpipe") {
  TempDir dir;
  std::string batch;
  for (int i = 0; i < 2000; ++i) batch += "echo " + std::to_string(i) + "\n";
  write_file(dir / "b.txt", batch);
  require_gnu();
  const auto gnu = sh(dir, "(parallel --will-cite -k -j2 < b.txt; echo $? > rc) | head -n 3; cat rc", "", 90s);
  const auto pp = sh(dir, "($P run -k -j2 < b.txt; echo $? > rc) | head -n 3; cat rc");
  CHECK(gnu.out == "0\n1\n2\n141\n");
  CHECK(pp.out == gnu.out);
  CHECK(pp.err.empty());
}

// Every option GNU parallel 20221122 knows (read from its own option table) is either supported or
// refused with procpool's message (exit 255), never unknown, never accepted and ignored.
TEST_CASE("Cli.Gnu.EveryGnuOptionSupportedOrRefused") {
  require_gnu();
  TempDir dir;
  write_file(dir / "names.pl", R"PERL(
open F, "/usr/bin/parallel" or die; my $src = join "", <F>;
$src =~ /(sub options_completion_hash\(\) \{.*?\n\}\n)/s or die "no option table"; eval $1; die $@ if $@;
my %h = options_completion_hash();
for my $k (sort keys %h) {
  $k =~ s/\[.*//s; my $v = ($k =~ s/=[sif]$//) ? 1 : 0; $k =~ s/:[sf]$//;
  for my $n (split /\|/, $k) { next if $n =~ /^_/; print((length($n) == 1 ? "-$n" : "--$n"), " $v\n"); }
}
)PERL");
  const auto names = sh(dir, "perl names.pl");
  REQUIRE(names.exit_code == 0);
  const auto all = lines_of(names.out);
  CHECK(all.size() > 250);
  // One shell loop, not one test process per name: procpool starts in a few milliseconds.
  const auto r = sh(dir,
                    "perl names.pl | while read n v; do "
                    "if [ $v = 1 ]; then out=$($P run --dry-run $n 1 echo ::: a 2>&1); st=$?; "
                    "else out=$($P run --dry-run $n echo ::: a 2>&1); st=$?; fi; "
                    "case \"$out\" in "
                    "*'not supported by procpool run'*|*'add one of them'*|*'not a writable directory'*|"
                    "*'arguments cannot be used'*|*'need --pipe or --pipepart'*|*'must be one of'*) [ $st = 255 ] || echo \"BAD STATUS $n $st\";; "
                    "*'echo a'|*'echo a'?'[m'|*'Usage: procpool run'*|*\"cannot open '1'\"*|*'--joblog FILE'*) ;; "  // dry runs, tagged or coloured (?'[m': the reset)
                    "'') [ $st = 0 ] || echo \"BAD STATUS $n $st\";; "  // --header 1 ::: a: a is the header
                    "*) echo \"UNHANDLED $n: $out\";; esac; done",
                    "", 120s);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "");
  // Spot checks: the message names the option and what to use instead.
  auto pipe = sh(dir, "$P run --pipe --regexp wc -l");
  CHECK(pipe.exit_code == 255);
  CHECK(pipe.err.find("--regexp: GNU parallel's option is not supported by procpool run: ") != std::string::npos);
  auto compress = sh(dir, "$P run --compress echo ::: a");
  CHECK(compress.err.find("--compress: GNU parallel's option is not supported by procpool run: procpool spills") !=
        std::string::npos);
  CHECK(sh(dir, "$P run --no-such-option echo ::: a").err.find("unknown option") != std::string::npos);
}

// GNU parallel's -t/--verbose print each command on stderr, -v on stdout; --silent cancels both.
TEST_CASE("Cli.Gnu.VerboseFlags") {
  TempDir dir;
  for (const std::string flag : {"-t", "--verbose", "-v", "-v --silent"}) {
    const auto b = run_both(dir, "-j1 " + flag + " echo ::: a b");
    check_same(b, flag);
    CHECK(b.pp.err == b.gnu.err);
  }
}

// -0, -d (GNU's escapes, several characters, ::: arguments split too), -r, -I.
TEST_CASE("Cli.Gnu.DelimitersEmptyAndReplace") {
  TempDir dir;
  const std::vector<std::pair<std::string, std::string>> inputs = {
      {"a,b\\n", "comma"}, {"a\\0b\\0\\0 \\0", "nul"}, {"aXYbXY", "xy"}, {"a\\tb\\t", "tab"},
      {"a\\n\\n  \\nb\\n", "blank"}, {"xAy\\r\\n", "octal"}};
  for (const std::string args :
       {"-k -d , printf '[%s]\\n' {}", "-k -0 printf '[%s]\\n' {}", "-k -d XY printf '[%s]\\n' {}",
        "-k -d '\\t' printf '[%s]\\n' {}", "-k -d , printf '[%s]\\n' {} ::: 'a,b' 'c,'",
        "-k -r printf '[%s]\\n' {}", "-k -r printf '[%s]\\n' {} ::: x :::: -", "-k -0 -r printf '[%s]\\n' {}",
        "-k -d '\\101' printf '[%s]\\n' {}", "-k -I @@ printf '[%s]\\n' 'x@@y' @@ ::: a 'b c'",
        "-k -I @@ printf '[%s]\\n' '@@' {} ::: a"}) {
    for (const auto& [input, name] : inputs) {
      const auto b = run_both(dir, args, "", "printf '" + input + "' | ");
      INFO(name);
      check_same(b, args);
    }
  }
  // A NUL byte without -0 is passed as \0, as GNU parallel does (with a warning).
  const auto nul = sh(dir, "printf 'a\\0b\\n' | $P run printf %s");
  CHECK(nul.out == "a\\0b");
  CHECK(nul.err.find("NUL byte") != std::string::npos);
}

// Several arguments per job: -n, -N (context replace, -N0), -m, -X (spread over the slots of a known
// input, limited by -s), alone and combined, with positional strings, {#}, {.}, --tag, joblog.
TEST_CASE("Cli.Gnu.SeveralArgumentsPerJob") {
  TempDir dir;
  write_file(dir / "n.txt", "1\n2\n3\n4\n5\n6\n7\n");
  for (const std::string args :
       {"-k -N2 echo ::: a b c d e", "-k -n2 echo ::: a b c d e", "-k -N2 echo {1}-{2} ::: a b c d e",
        "-k -n2 echo {1}-{2} ::: a b c d e", "-k -N2 echo x{}y ::: a b c", "-k -X echo x{}y ::: a b c",
        "-k -m echo x{}y ::: a b c", "-k -N2 echo {#} {.} ::: a.x b.y c", "-k -N0 echo hi ::: a b",
        "-k -N2 --tag echo ::: a b c", "-k -j1 -X echo ::: a b c d", "-k -N2 echo ::: a b ::: 1 2",
        "-k -j1 -N2 echo 'x{}y z{.}' ::: a.1 b.2", "-k -j1 -m echo 'x{}y' ::: a b", "-k -j1 -N2 echo x{1}y ::: a b",
        "-k -j1 -X echo x{}y{}z ::: a b", "-k -j1 -N2 -X echo x{}y ::: a b c", "-k -j1 -n2 -m echo x{}y ::: a b c",
        "-k -j3 -X echo :::: n.txt", "-k -j1 -X -s 17 echo ::: aaa bbb ccc ddd eee fff",
        "-k -j1 -m -s 21 echo x{}y ::: aaa bbb 'c c' ddd eee fff", "-k -N3 echo :::: -"}) {
    const auto b = run_both(dir, args + " < n.txt");
    check_same(b, args);
  }
  const auto log = run_both(dir, "-k -j1 -N2 --joblog - echo ::: a b c");
  CHECK(masked_joblog(log.pp.out) == masked_joblog(log.gnu.out));
}

// --nice (the jobs only), --tmpdir (the jobs' TMPDIR too), --shuf (random order, numbered as run).
TEST_CASE("Cli.Gnu.NiceTmpdirShuf") {
  TempDir dir;
  check_same(run_both(dir, "--nice 5 'nice; : {}' ::: a"), "--nice");
  check_same(run_both(dir, "--tmpdir /var/tmp 'echo $TMPDIR {}' ::: a"), "--tmpdir");
  CHECK(sh(dir, "$P run --tmpdir /nonexistent echo ::: a").exit_code == 255);
  const std::string shuf = "-j1 --shuf --joblog - echo ::: a b c d e f g h i j";
  const auto b = run_both(dir, shuf);
  auto sorted_lines = [](const std::string& text) {
    auto lines = lines_of(masked_joblog(text));
    std::vector<std::string> seqs, outputs;
    for (const auto& line : lines) {
      const auto f = split_tabs(line);
      if (f.size() == 9 && f[0] != "Seq") seqs.push_back(f[0]);
      else if (f.size() == 1) outputs.push_back(line);
    }
    std::sort(outputs.begin(), outputs.end());
    return std::make_pair(seqs, outputs);
  };
  CHECK(sorted_lines(b.pp.out) == sorted_lines(b.gnu.out));  // seqs 1..10 in order, the same outputs
  // Random order: 10 jobs in input order 5 times running is a 1 in 10^32 event.
  bool shuffled = false;
  for (int i = 0; i < 5 && !shuffled; ++i)
    shuffled = sh(dir, "$P run -j1 --shuf echo ::: a b c d e f g h i j").out != "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n";
  CHECK(shuffled);
}

// --header: each source's first line names its columns, {name} (and {name.} ...) in the command.
TEST_CASE("Cli.Gnu.HeaderNamesColumns") {
  TempDir dir;
  write_file(dir / "h.csv", "x,y\n1,2\n3,4\n");
  for (const std::string args :
       {"-k --header : echo {a}-{b} ::: a 1 2 ::: b x y", "-k --header : --colsep , echo {y}-{x}-{1} :::: h.csv",
        "-k --header : echo {} ::: a 1 2", "-k --header '.*' --colsep , echo {x}{.}{x.} :::: h.csv",
        "-k --header 2 --colsep , echo {x} :::: h.csv", "-k --header : --colsep , echo {x} :::: - < h.csv",
        "-k --header : --colsep , -a h.csv echo {y}"})
    check_same(run_both(dir, args), args);
  const auto log = run_both(dir, "-k -j1 --header : --colsep , --joblog - echo {x} :::: h.csv");
  CHECK(masked_joblog(log.pp.out) == masked_joblog(log.gnu.out));  // the header line takes no Seq
}

// --plus: the path strings as GNU parallel's Perl substitutions; the strings procpool lacks are refused.
TEST_CASE("Cli.Gnu.PlusStrings") {
  TempDir dir;
  const std::string args =
      "-k --plus echo '[{..}] [{...}] [{+/}] [{+.}] [{+..}] [{+...}] [{/..}] [{/...}] [{2..}] [{slot}]' ::: "
      "a.b.c.d /x/y.tar.gz .a.b dir.d/f.e a.b/c plain '' x. ::: q.r.s";
  check_same(run_both(dir, "-j1 " + args), args);
  check_same(run_both(dir, "-k echo {..} ::: a.b.c"), "without --plus {..} is text");
  // Those it lacks are refused (the bash-like ones: Cli.GnuPlus).
  for (const std::string refused : {"{2choose_k}", "{2uniq}", "{host}", "{sshlogin}"}) {
    const auto r = sh(dir, "$P run --plus echo '" + refused + "' ::: a.b.c");
    CHECK(r.exit_code == 255);
    CHECK(r.out.empty());
    CHECK(r.err.find("--plus: the replacement string " + refused + " is not supported") != std::string::npos);
  }
}

// --retry-failed: the failed jobs of the joblog run again, commands and numbers as logged, appended.
TEST_CASE("Cli.Gnu.RetryFailed") {
  TempDir dir;
  require_gnu();
  REQUIRE(sh(dir, "parallel --will-cite -j1 --joblog j.tsv 'echo {}; exit {}' ::: 0 1 0 2 > /dev/null; "
                  "cp j.tsv gnu.tsv; cp j.tsv pp.tsv", "", 90s).exit_code == 0);
  const auto gnu = sh(dir, "parallel --will-cite -k -j1 --retry-failed --joblog gnu.tsv", "", 90s);
  const auto pp = sh(dir, "$P run -k -j1 --retry-failed --joblog pp.tsv");
  CHECK(pp.out == gnu.out);
  CHECK(pp.out == "1\n2\n");
  CHECK(pp.exit_code == gnu.exit_code);
  const auto rows = [](const std::string& text) {  // in file order: the retries are appended
    std::string out;
    for (const auto& line : lines_of(text)) {
      const auto f = split_tabs(line);
      if (f.size() == 9) out += f[0] + " " + f[6] + " " + f[8] + "\n";
    }
    return out;
  };
  CHECK(rows(read_file(dir / "pp.tsv")) == rows(read_file(dir / "gnu.tsv")));
  CHECK(sh(dir, "$P run --retry-failed echo ::: a").exit_code == 255);  // needs --joblog
}

// --pipe and --pipepart (issue 15): every chunk as GNU parallel cuts it (md5sum of each, in order),
// by size with GNU's suffixes, -N records, --recstart/--recend, --header; the same joblog (Send is
// the chunk's size).
TEST_CASE("Cli.Gnu.PipeChunksAsGnu") {
  TempDir dir;
  // A few dozen jobs each: GNU parallel starts about 100 a second here.
  REQUIRE(sh(dir, "seq 200000 > in.txt; (echo head; seq 30000) > h.txt; seq 2000 > small.txt").exit_code == 0);
  for (const std::string args :
       {"--pipe --block 100k < in.txt", "--pipe --block 1M < in.txt", "--pipe --block 40Ki < in.txt",
        "--pipe -N 100 < small.txt", "--pipe -N 70 --block 1k < small.txt", "--pipe --block 30k --recend 0 < in.txt",
        "--pipe --block 30k --recstart 1 < in.txt", "--pipe --block 30k --recstart 1 --recend 9 < in.txt",
        "--pipe --block 30k --recend '' < in.txt", "--pipe --block 10k --recend '\\n9' < in.txt",
        "--pipe -N 3 --recstart 1 --recend 9 < small.txt", "--pipepart -a in.txt --block 100k",
        "--pipepart -a in.txt --block -3", "--pipepart -a in.txt", "--pipepart --block 30k --recstart 1 --recend 9 :::: in.txt",
        "--pipepart -a in.txt -a h.txt --block 100k"}) {
    const std::string line = "-k " + args + " md5sum";
    check_same(run_both(dir, line), line);
  }
  for (const std::string args : {"--pipe --block 10k --header : < h.txt", "--pipe --block 10k --header 2 < h.txt",
                                 "--pipepart -a h.txt --block 10k --header :"}) {
    const std::string line = "-k " + args + " md5sum";
    check_same(run_both(dir, line), line);
  }
  // The joblog: one line per chunk, Send its size.
  const auto b = run_both(dir, "-j1 --pipe --block 30k --joblog log.tsv wc -c < in.txt >/dev/null; cat log.tsv");
  CHECK(masked_joblog(b.pp.out) == masked_joblog(b.gnu.out));
  CHECK(lines_of(b.pp.out).size() > 40);
}

TEST_CASE("Cli.Gnu.PipeSumsOrderAndEarlyExit") {
  TempDir dir;
  // seq 1e6 | procpool run --pipe --block 100k wc -l: the counts add up, as GNU parallel's.
  const auto sums = run_both(dir, "--pipe --block 100k wc -l | awk '{s += $1} END {print s}'",
                             "", "seq 1000000 | ");
  check_same(sums, "sums");
  CHECK(sums.pp.out == "1000000\n");
  // -k: the output in input order although the later chunks finish first.
  check_same(run_both(dir, "-k -j4 --pipe -N 1 'read x; sleep 0.$((6 - x)); echo $x'", "", "seq 6 | "), "-k");
  // Jobs that read only part of their chunk (or none of it) end; the rest of it is dropped.
  check_same(run_both(dir, "-k --pipe --block 50k head -n 1", "", "seq 100000 | "), "head");
  check_same(run_both(dir, "-k --pipepart -a in.txt --block 50k 'echo x'", "", "seq 100000 > in.txt; "), "none read");
  // Chunks larger than a pipe holds, several jobs at once.
  check_same(run_both(dir, "-k -j3 --pipe --block 3M md5sum", "", "seq 2000000 | "), "large chunks");
  // No input, no job.
  for (const std::string args : {"--pipe wc -l", "--pipepart -a empty.txt wc -l"}) {
    const auto none = run_both(dir, args, "", ": > empty.txt; printf '' | ");
    CHECK(none.pp.out == none.gnu.out);
    CHECK(none.pp.out.empty());
    CHECK(none.pp.exit_code == none.gnu.exit_code);
  }
  // A failing job's exit status counts as for any job.
  const auto failing = run_both(dir, "--pipe -N 1 'read x; exit $x'", "", "printf '0\\n3\\n0\\n1\\n' | ");
  CHECK(failing.pp.exit_code == failing.gnu.exit_code);
  CHECK(failing.pp.exit_code == 2);
}

TEST_CASE("Cli.Gnu.PipePartRefusesStreams") {
  TempDir dir;
  for (const std::string args : {"--pipepart -a - wc -l", "--pipepart wc -l ::: a"}) {
    const auto r = sh(dir, "$P run " + args);
    CHECK(r.exit_code == 255);
    CHECK(r.out.empty());
  }
  const auto fifo = sh(dir, "mkfifo f; $P run --pipepart -a f wc -l");
  CHECK(fifo.exit_code == 255);
  CHECK(fifo.err.find("--pipepart only works on seekable files") != std::string::npos);
}

// An empty source (`:::` alone, an empty file) among sources with values is one empty value, as in
// GNU parallel; when every source is empty no job runs.
TEST_CASE("Cli.Gnu.EmptySources") {
  TempDir dir;
  write_file(dir / "two.txt", "1\n2\n");
  write_file(dir / "empty.txt", "");
  for (const std::string args :
       {"echo [{1}][{2}] ::: a b :::", "echo [{1}][{2}] ::: ::: a b", "echo [{1}][{2}][{3}] ::: a b ::: ::: x y",
        "echo [{1}][{2}] ::: a b :::+", "echo [{1}][{2}] ::: :::+ a b", "echo [{1}][{2}] ::: a b :::: empty.txt",
        "echo [{1}][{2}] :::: empty.txt ::: a b", "echo [{1}][{2}] :::: two.txt :::"}) {
    const std::string line = "-k " + args;
    check_same(run_both(dir, line), line);
  }
  for (const std::string args : {"echo [{1}] :::", "echo [{1}][{2}] ::: :::", "echo [{1}][{2}] :::: empty.txt :::"}) {
    const auto b = run_both(dir, args);
    CHECK(b.pp.out.empty());
    CHECK(b.gnu.out.empty());
    CHECK(b.pp.exit_code == 0);
    CHECK(b.gnu.exit_code == 0);
  }
}

// --trim n|l|r|lr|rl on every value, lr by default with --colsep (GNU parallel's).
TEST_CASE("Cli.Gnu.Trim") {
  TempDir dir;
  for (const std::string args :
       {"-k --trim lr echo '[{}]' ::: ' a ' 'b  '", "-k --trim l echo '[{}]' ::: ' a ' 'b  '",
        "-k --trim r echo '[{1}]' ::: '  a	 '", "-k --trim rl echo '[{}]' ::: ' a '",
        "-k --trim n --colsep , echo '[{1}][{2}]' ::: ' a , b '", "-k --colsep , echo '[{1}][{2}]' ::: ' a , b '",
        "-k --trim r --colsep , echo '[{1}][{2}]' ::: ' a , b '", "-k --trim l -N2 echo '[{1}][{2}]' ::: ' a ' ' b '"})
    check_same(run_both(dir, args), args);
  const auto bad = run_both(dir, "--trim x echo ::: a");
  CHECK(bad.pp.exit_code == 255);
  CHECK(bad.gnu.exit_code == 255);
}

// -L N: N lines per job, as -N N; with --pipe a record is N lines (-N then counts such records).
TEST_CASE("Cli.Gnu.MaxLines") {
  TempDir dir;
  for (const std::string args : {"-k -L 2 echo", "-k -L 2 -X echo '[{}]'", "-k -L 0 echo x", "-k -L 2 echo '[{}]' x{}y",
                                 "-k -L 2 -n 1 echo"})
    check_same(run_both(dir, args, "a b\nc\nd\n"), args);
  // -l [N]: -L N without the context replace, N optional (a word after it that is no number is the
  // command's); with -L or -l a line ending in white space goes on with the next (-r judged once joined).
  for (const std::string args : {"-k -l 2 echo '[{}]' x{}y", "-k -l echo x", "-k -l 0 echo x", "-k -l2 echo x",
                                 "-k --max-lines=2 echo x", "-k -l -X echo x", "-k -L 2 echo '[{}]' x{}y",
                                 "-k -n1 echo x", "-k -L1 echo x ::: 1 2 :::: -", "-k -l1 -a - echo x"})
    check_same(run_both(dir, args, "a \n\nb\nc  \nd\n"), args);
  for (const std::string args : {"-k -L1 echo x", "-k -r -L1 echo x"})
    for (const std::string input : {"a\nb \n", "a \n \nb\n"}) check_same(run_both(dir, args, input), args + " < " + input);
  check_same(run_both(dir, "-k -L1 echo x ::: 'a ' b 'c '"), "::: with -L");
  for (const std::string args : {"-k --pipe -L 3 'paste -sd,'", "-k --pipe -L 3 -N 2 'paste -sd,'", "-k --pipe -l 3 'paste -sd,'",
                                 "-k --pipe -L 7 --block 1k md5sum", "-k --pipe -L 700 --block 1k md5sum"})
    check_same(run_both(dir, args, "", "seq 3000 | "), args);
}

// --termseq: the signals and waits that kill a timed-out job, as GNU parallel sends them.
TEST_CASE("Cli.Gnu.TermSeq") {
  TempDir dir;
  for (const std::string args :
       {"--timeout 0.3 --termseq TERM,300,TERM,300,KILL,25 'trap \"echo T\" TERM; while :; do sleep 0.05; done; : {}' ::: 1",
        "--timeout 0.3 --termseq INT,300,SIGUSR1,300,KILL 'trap \"echo I\" INT; trap \"echo U\" USR1; "
        "while :; do sleep 0.05; done; : {}' ::: 1"})
    check_same(run_both(dir, args), args);
  // After the last step procpool sends KILL (GNU parallel leaves the job running).
  const auto r = sh(dir, "$P run --timeout 0.2 --termseq TERM,100 'trap \"echo T\" TERM; while :; do sleep 0.05; done; : {}' ::: 1");
  CHECK(r.out == "T\n");
  CHECK(r.exit_code == 1);
  CHECK(sh(dir, "$P run --termseq FOO,1 echo ::: 1").exit_code == 255);
  CHECK(sh(dir, "$P run --termseq TERM,1 --grace 1 echo ::: 1").exit_code == 255);
}

TEST_CASE("Cli.Gnu.Colour") {
  TempDir dir;
  // Byte for byte, escape sequences included: grouped (stdout and stderr, a CR inside a line, a last
  // line without a newline), --line-buffer (whose unfinished last line GNU parallel writes uncoloured,
  // also for a job that finished while -k held it),
  // -u (never coloured), -v, --dry-run, and 320 jobs to go once through GNU parallel's 307 colours.
  for (const std::string args :
       {"--ctag -k sh -c 'echo {}; echo e{} >&2' ::: a b", "--color -k printf 'x\\ry\\r' ::: a",
        "--color -k echo ::: $(seq 320)", "--ctagstring '<{}>' -k echo ::: a b", "--tagstring X --ctagstring Y echo ::: a",
        "--tagstring X echo ::: a", "--lb --ctag -k printf 'x\\ny' ::: a b", "--lb --color -k printf '%s\\r%s\\n' ::: a b",
        "--lb -k --color -j2 'sleep {}; printf \"y\\nx{}\"' ::: 0.3 0", "--colour -u echo ::: a", "-v --color echo ::: a", "--dry-run --ctag -k echo ::: a b", "--dry-run --tag echo ::: a"}) {
    const auto b = run_both(dir, args);
    check_same(b, args);
    CHECK(b.pp.err == b.gnu.err);
  }
  // The broker's output arrives uncoloured: refused there.
  const auto r = sh(dir, "$P run --broker redis://127.0.0.1:1 --color echo ::: a");
  CHECK(r.exit_code == 255);
  CHECK(r.err.find("--color, --ctag and --ctagstring cannot be used with --broker") != std::string::npos);
}

TEST_CASE("Cli.Gnu.Csv") {
  TempDir dir;
  // Quoted fields holding the separator, "" and newlines; an empty record; untrimmed values without
  // --colsep, trimmed with it; --header names; -a and stdin; a ::: argument whose quote goes on in the
  // next one (GNU parallel reads ::: arguments as lines of a file too).
  write_file(dir / "a.csv", "a,\"x,y\"\n\"p\"\"q\",\"r\ns\"\n\n  u , v \n\"\",\"\",\n");
  write_file(dir / "s.csv", "a;\"x;y\"\n  u ; v \n");
  write_file(dir / "h.csv", "y,x\n1,2\n\"3\n4\",5\n");
  for (const std::string args :
       {"--csv -k echo {2}-{1}-{3} :::: a.csv", "--csv --colsep ';' -k echo {2}-{1} :::: s.csv",
        "--csv --header : -k echo {x}-{y} :::: h.csv", "--csv -k -a a.csv echo {2}", "--csv -k echo {2} :::: - < a.csv",
        "--csv -k echo {} :::: a.csv", "--csv -k echo {3}-{2}-{1} ::: 'a,,' ',\"\",x' '\"\",\"a\"\"\"'",
        "--csv -k echo {1}{2}{3} ::: 'a,\"b' 'c\"' ::: x,y", "--csv --trim n --colsep , -k echo [{1}] ::: ' a , b'"}) {
    const auto b = run_both(dir, args);
    check_same(b, args);
  }
  // A malformed record (a stray quote, a CR outside quotes, an unclosed quote at the end): both stop
  // with the same message (GNU parallel's status is Perl's die status, 255 or errno).
  write_file(dir / "crlf.csv", "a,b\r\n");
  write_file(dir / "open.csv", "a,\"b\n");
  for (const std::string args : {"--csv echo {2} ::: 'a,b\"c'", "--csv echo {2} ::: 'a,\"b\"c'", "--csv echo {2} :::: crlf.csv",
                                 "--csv echo {2} :::: open.csv", "--csv echo {2} :::: - < open.csv"}) {
    const auto b = run_both(dir, args);
    INFO(args);
    CHECK(b.gnu.exit_code != 0);
    CHECK(b.pp.exit_code == 255);
    CHECK(b.pp.out.empty());
    const auto message = b.pp.err.substr(std::string("procpool: ").size());
    CHECK(b.gnu.err.rfind(message.substr(0, message.size() - 1), 0) == 0);  // GNU adds " at /usr/bin/parallel..."
  }
  CHECK(sh(dir, "$P run --csv --colsep '[,]' echo ::: a").exit_code == 255);
  CHECK(sh(dir, "$P run --csv --pipe cat").exit_code == 255);
  // procpool takes --colsep '\t' as a TAB, the usual TSV idiom (Text::CSV would take two characters).
  CHECK(sh(dir, "$P run --csv --colsep '\\t' echo {2} ::: \"$(printf 'a\\t\"b\\tc\"')\"").out == "b\tc\n");
}

namespace {

/// Every file under `root`, sorted, as "path: content" lines; the CSV/TSV/JSON timing columns masked.
std::string tree_text(const fs::path& root) {
  std::map<std::string, std::string> files;
  if (fs::exists(root))
    for (const auto& entry : fs::recursive_directory_iterator(root))
      if (entry.is_regular_file()) files[fs::relative(entry.path(), root).string()] = read_file(entry.path());
  std::string text;
  static const std::regex kTimes(R"([0-9]{10}\.[0-9]{3}([,\t]|, "JobRuntime": )[0-9]+\.[0-9]{3})");
  for (const auto& [path, content] : files) text += path + ": " + std::regex_replace(content, kTimes, "T$1R") + "\n";
  return text;
}

} // namespace

TEST_CASE("Cli.Gnu.Results") {
  TempDir dir;
  // GNU parallel's --results layouts: the output goes to the files only (--line-buffer prints each
  // job's stdout file name); -j1 for the tables, whose rows come in the order the jobs end.
  for (const std::string results : {"res", "sub/my_{}", "sub/{1}/{2}/", "sub/{a}/x{b}", "t.csv", "t.tsv", "t.json"}) {
    for (const std::string args :
         {"'echo {}; echo e{} >&2' ::: a 'b/c' '../x' 'q\"u,o te' '' . 'tab\tx'", "-n2 echo ::: a b c",
          "echo {1}-{2} ::: a b ::: 1 2", "--header : echo {b} {a} ::: b III IIII ::: a I II",
          "-v 'echo {}; exit 3' ::: x y", "--lb echo ::: a", "-u echo ::: a"}) {
      if (results.find('{') != std::string::npos && args.find("'../x'") != std::string::npos) continue;  // refused
      if (results == "t.json" && args.rfind("--lb", 0) == 0) continue;  // GNU prints a temporary file's name
      const std::string both_args = "-j1 --results '" + results + "' " + args;
      fs::remove_all(dir / "g");
      fs::remove_all(dir / "p");
      fs::create_directories(dir / "g");
      fs::create_directories(dir / "p");
      require_gnu();
      const auto gnu = sh(dir, "cd g && parallel --will-cite " + both_args, "", 90s);
      const auto pp = sh(dir, "cd p && $P run " + both_args, "", 90s);
      INFO(both_args, "\nGNU stderr: ", gnu.err, "\nprocpool stderr: ", pp.err);
      CHECK(pp.out == gnu.out);
      CHECK(pp.exit_code == gnu.exit_code);
      CHECK(tree_text(dir / "p") == tree_text(dir / "g"));
      CHECK(!tree_text(dir / "g").empty());
    }
  }
  // The tables on stdout; procpool's older layout behind --results-layout seq, output printed as well.
  const auto b = run_both(dir, "-j1 --results -.csv echo ::: a 'b c'");
  CHECK(std::regex_replace(b.pp.out, std::regex(R"([0-9]{10}\.[0-9]{3},[0-9.]+)"), "T") ==
        std::regex_replace(b.gnu.out, std::regex(R"([0-9]{10}\.[0-9]{3},[0-9.]+)"), "T"));
  const auto seq = sh(dir, "$P run -j1 --results-layout seq --results old echo ::: a");
  CHECK(seq.out == "a\n");
  CHECK(read_file(dir / "old/1/stdout") == "a\n");
  CHECK(read_file(dir / "old/1/cmd") == "echo a\n");
  CHECK(sh(dir, "$P run --results-layout gnu echo ::: a").exit_code == 255);  // needs --results
  CHECK(sh(dir, "$P run --results x --results-layout flat echo ::: a").exit_code == 255);
  CHECK(sh(dir, "$P run --broker redis://127.0.0.1:1 --results x --results-layout gnu echo ::: a").exit_code == 255);
}

TEST_CASE("Cli.Gnu.Limit") {
  TempDir dir;
  // Exit 2 kills the youngest running job (logged -1, SIGTERM, a failure); 1 waits; the command sees
  // SSHLOGIN=: and its stdin is not procpool's.
  write_file(dir / "lim.sh",
             "n=$(cat n 2>/dev/null || echo 0); n=$((n+1)); echo $n > n\n[ $n -eq 3 ] && exit 2\nexit 0\n");
  write_file(dir / "slow.sh", "n=$(cat s 2>/dev/null || echo 0); echo $((n+1)) > s; [ $n -ge 4 ]\n");
  for (const std::string args :
       {"-k -j2 --joblog - --limit 'sh lim.sh' 'sleep 1; echo {}' ::: a b c", "-k --limit 'sh slow.sh' echo ::: a b",
        "-k --limit 'test \"$SSHLOGIN\" = : && test ! -p /dev/stdin' echo ::: a b < /dev/null",
        "-k --limit 'mem 1k' echo ::: a b", "-k --limit 'load 100000' echo ::: a b"}) {
    const auto b = run_both(dir, args, "", "rm -f n s; ");
    INFO(args, "\nGNU stderr: ", b.gnu.err, "\nprocpool stderr: ", b.pp.err);
    CHECK(masked_joblog(b.pp.out) == masked_joblog(b.gnu.out));
    CHECK(b.pp.exit_code == b.gnu.exit_code);
    CHECK(!b.gnu.out.empty());
    if (args.find("slow.sh") != std::string::npos) CHECK(std::stoi(read_file(dir / "s")) >= 5);  // four exit 1s
  }
  // GNU parallel's `io N` needs iostat; procpool reads /proc/diskstats (it waits a first second).
  const auto io = sh(dir, "$P run -k --limit 'io 100' echo ::: a b");
  CHECK(io.out == "a\nb\n");
  CHECK(sh(dir, "$P run --limit 'mem 1x' echo ::: a").exit_code == 255);
  CHECK(sh(dir, "$P run --limit 'load x' echo ::: a").exit_code == 255);
  CHECK(sh(dir, "$P run --broker redis://127.0.0.1:1 --limit 'exit 0' echo ::: a").exit_code == 255);
}

TEST_CASE("Cli.Gnu.ColorFailed") {
  TempDir dir;
  // White on red for a job that exited non-zero, grouped output only; a last line without a newline
  // gets one; a job killed by a signal has exit status 0 there; with --color the others keep theirs.
  for (const std::string args :
       {"--cf -k 'echo {}; exit {}' ::: 0 1 2", "--cf -k --tag 'printf \"x\\ny{}\"; exit {}' ::: 0 1",
        "--colour-failed --color -k 'echo {}; echo e{} >&2; exit {}' ::: 0 1", "--cf --lb -k 'echo {}; exit {}' ::: 0 1",
        "--cf -u -j1 'echo {}; exit {}' ::: 0 1", "--cf -k 'kill $$' ::: 1"}) {
    const auto b = run_both(dir, args);
    check_same(b, args);
    CHECK(b.pp.err == b.gnu.err);
  }
  const auto r = sh(dir, "$P run --broker redis://127.0.0.1:1 --cf echo ::: a");
  CHECK(r.exit_code == 255);
  CHECK(r.err.find("--color-failed cannot be used with --broker") != std::string::npos);
}

TEST_CASE("Cli.Gnu.ExitIfTooLong") {
  TempDir dir;
  // -x with -m/-X: an argument that alone makes the command longer than -s stops the run, the jobs
  // before it run; GNU parallel's message. Without -m/-X, -x changes nothing (as in GNU parallel).
  const std::string input = "a b\nc\nd\naaaaaaaaaaaaaaaaaaaaaaaaa\ne\n";
  const auto b = run_both(dir, "-x -k -X -s 20 echo", input);
  // GNU parallel may stop before it starts the jobs formed first: not compared.
  CHECK(b.gnu.exit_code == 255);
  CHECK(b.pp.exit_code == 255);
  CHECK(b.pp.out == "a b c d\n");
  CHECK(b.pp.err == "procpool: Command line too long (30 >= 20) at input 0: aaaaaaaaaaaaaaaaaaaaaaaaa\n");
  CHECK(b.gnu.err.find("Command line too long (30 >= 20) at input 0: aaaaaaaaaaaaaaaaaaaaaaaaa\n") != std::string::npos);
  const auto cut = sh(dir, "$P run -x -m -s 20 echo ::: " + std::string(60, 'z'));
  CHECK(cut.err == "procpool: Command line too long (65 >= 20) at input 0: " + std::string(50, 'z') + "...\n");
  check_same(run_both(dir, "-x -k echo x", input), "-x alone");
}

TEST_CASE("Cli.Gnu.ResumeFromResults") {
  TempDir dir;
  // GNU parallel's --resume without --joblog: a job whose --results files exist is not run again.
  for (const std::string results : {"res", "t/{1}-{2}"}) {
    const std::string args = "-k --resume --results '" + results + "' 'echo {1}{2}; touch ran.{1}{2}' ::: a b ::: 1 2";
    fs::remove_all(dir / "res");
    fs::remove_all(dir / "t");
    fs::create_directories(dir / "g");
    fs::create_directories(dir / "p");
    require_gnu();
    for (const char* side : {"g", "p"}) {
      const std::string program = side == std::string("g") ? "parallel --will-cite" : "$P run";
      CHECK(sh(dir, std::string("cd ") + side + " && " + program + " -k --results '" + results + "' 'echo {1}{2}' ::: a ::: 1 2")
                .exit_code == 0);
      const auto r = sh(dir, std::string("cd ") + side + " && rm -f ran.* && " + program + " " + args + " && ls ran.*");
      INFO(side, " ", results, ": ", r.err);
      CHECK(r.exit_code == 0);
      CHECK(r.out == "ran.b1\nran.b2\n");
    }
  }
}
