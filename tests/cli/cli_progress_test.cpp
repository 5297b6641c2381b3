// procpool run --bar/--eta/--progress: drawn in a real terminal (tmux), absent on a pipe.
#include "cli_helpers.hpp"

using namespace clitest;

TEST_CASE("Cli.Progress.BarInTmux") {
  TempDir dir;
  std::string batch;
  for (int i = 0; i < 20; ++i) batch += "sleep 0.1\n";
  write_file(dir / "b.txt", batch);
  const std::string socket = "procpool-test-" + std::to_string(::getpid());
  const std::string tmux = "tmux -L " + socket + " -f /dev/null ";
  // The command runs in the pane's terminal, then waits so the final screen can be captured.
  const auto started = sh(dir, tmux + "new-session -d -s bar -x 120 -y 10 \"$P run -j2 --bar b.txt; "
                                      "echo exit=\\$?; sleep 30\"");
  REQUIRE_MESSAGE(started.exit_code == 0, "tmux must be installed: ", started.err);
  std::string screen;
  const bool finished = eventually([&] {
    screen = sh(dir, tmux + "capture-pane -p -t bar").out;
    return screen.find("exit=0") != std::string::npos;
  }, 30000ms);
  sh(dir, tmux + "kill-server");
  INFO(screen);
  REQUIRE(finished);
  CHECK(screen.find("[########################################] 100% 20/20 | 20 done, 0 failed, 0 running") !=
        std::string::npos);
}

TEST_CASE("Cli.Progress.EtaMidRunInTmux") {
  TempDir dir;
  std::string batch;
  for (int i = 0; i < 30; ++i) batch += "sleep 0.2\n";
  write_file(dir / "b.txt", batch);
  const std::string socket = "procpool-test-eta-" + std::to_string(::getpid());
  const std::string tmux = "tmux -L " + socket + " -f /dev/null ";
  REQUIRE(sh(dir, tmux + "new-session -d -s eta -x 120 -y 10 \"$P run -j2 --eta b.txt; sleep 30\"").exit_code == 0);
  std::string screen;
  const bool seen = eventually([&] {
    screen = sh(dir, tmux + "capture-pane -p -t eta").out;
    return screen.find("ETA: ") != std::string::npos && screen.find("2 running") != std::string::npos;
  }, 20000ms);
  sh(dir, tmux + "kill-server");
  INFO(screen);
  CHECK(seen);
}

TEST_CASE("Cli.Progress.NothingOnAPipeUnlessForced") {
  TempDir dir;
  auto r = sh(dir, "$P run -k --bar --eta --progress echo ::: a b");
  CHECK(r.out == "a\nb\n");
  CHECK(r.err.empty());
  r = sh(dir, "$P run -j1 --bar --force-progress echo ::: a b");
  CHECK(r.err.find("100% 2/2") != std::string::npos);
  r = sh(dir, "$P run -j1 --eta --force-progress echo ::: a b");
  CHECK(r.err.find("ETA: 0:00 Left: 0") != std::string::npos);
  r = sh(dir, "$P run -j1 --progress --force-progress 'exit {}' ::: 0 1");
  CHECK(r.err.find("local: 0/2/") != std::string::npos);
  CHECK(r.err.find("2 done, 1 failed, 0 running") != std::string::npos);
}

TEST_CASE("Cli.Tty.JobReadsTheTerminal") {
  TempDir dir;
  const std::string tmux = "tmux -L procpool-test-tty-" + std::to_string(::getpid()) + " -f /dev/null ";
  REQUIRE(sh(dir, tmux + "new-session -d -s tty -x 100 -y 10 \"$P run --tty 'read answer; echo got:\\$answer:{}' "
                         "::: x; echo exit=\\$?; sleep 30\"").exit_code == 0);
  std::this_thread::sleep_for(500ms);
  sh(dir, tmux + "send-keys -t tty hello Enter");
  std::string screen;
  const bool done = eventually([&] {
    screen = sh(dir, tmux + "capture-pane -p -t tty").out;
    return screen.find("exit=") != std::string::npos;
  }, 15000ms);
  sh(dir, tmux + "kill-server");
  INFO(screen);
  CHECK(done);
  CHECK(screen.find("got:hello:x") != std::string::npos);
  CHECK(screen.find("exit=0") != std::string::npos);
}

TEST_CASE("Cli.Tty.CtrlCInTerminalThenResume") {
  // A real Ctrl-C: tmux sends it to the terminal's foreground process group (procpool and its
  // watchdog, not the jobs, which lead their own groups).
  TempDir dir;
  std::string batch;
  for (int i = 1; i <= 20; ++i) batch += "sleep 0.3; echo " + std::to_string(i) + "\n";
  write_file(dir / "b.txt", batch);
  write_file(dir / "run.sh", "\"$P\" run -j2 --joblog log.tsv b.txt > first.out\necho exit=$? > status.txt\nsleep 30\n");
  const std::string tmux = "tmux -L procpool-test-intr-" + std::to_string(::getpid()) + " -f /dev/null ";
  REQUIRE(sh(dir, tmux + "new-session -d -s intr -x 100 -y 10 \"P='$P' bash run.sh\"").exit_code == 0);
  const bool started = eventually([&] { return joblog_rows(dir / "log.tsv").size() >= 3; });
  sh(dir, tmux + "send-keys -t intr C-c");
  const bool stopped = eventually([&] { return fs::exists(dir / "status.txt"); });
  sh(dir, tmux + "kill-server");
  REQUIRE(started);
  REQUIRE(stopped);
  CHECK(read_file(dir / "status.txt") == "exit=255\n");
  std::set<long> first;
  for (const auto& line : lines_of(read_file(dir / "first.out"))) first.insert(std::stol(line));
  CHECK(first == joblog_seqs(dir / "log.tsv"));
  CHECK(first.size() < 20);
  const auto r = sh(dir, "$P run -j2 --joblog log.tsv --resume b.txt");
  CHECK(lines_of(r.out).size() == 20 - first.size());
  CHECK(joblog_seqs(dir / "log.tsv").size() == 20);
}
