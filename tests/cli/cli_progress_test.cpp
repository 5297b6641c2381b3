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
