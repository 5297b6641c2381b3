// procpool sem (issue 15): GNU parallel's counting semaphore across invocations. Slots are flock()ed
// lock files under $PROCPOOL_SEMAPHORE_DIR (each test uses its own directory).
#include "cli_helpers.hpp"

#include <algorithm>

using namespace clitest;

namespace {

/// `script` with the semaphores kept in the test's directory.
testing::ProgramResult sem_sh(const TempDir& dir, const std::string& script) {
  return sh(dir, "export PROCPOOL_SEMAPHORE_DIR=\"$PWD/sem\"; " + script);
}

} // namespace

// Four background invocations with -j2: never more than two commands at once (each appends + when it
// starts and - when it ends to a shared file), two of them together at some point; --wait returns
// only once all four have ended.
TEST_CASE("Cli.Sem.NeverMoreThanNAtOnce") {
  TempDir dir;
  const auto r = sem_sh(dir,
                        "for i in 1 2 3 4; do $P sem -j2 --id four 'echo + >> log; sleep 0.3; echo - >> log'; done; "
                        "$P sem --wait --id four; cat log");
  REQUIRE(r.exit_code == 0);
  const auto marks = lines_of(r.out);
  CHECK(marks.size() == 8);
  int running = 0, most = 0;
  for (const auto& mark : marks) {
    running += mark == "+" ? 1 : -1;
    most = std::max(most, running);
  }
  CHECK(most == 2);
  CHECK(running == 0);
}

// --fg runs the command here and exits with its status, as GNU sem; so does run --semaphore --fg.
TEST_CASE("Cli.Sem.ForegroundExitStatus") {
  TempDir dir;
  CHECK(sem_sh(dir, "$P sem --fg --id fg 'exit 3'").exit_code == 3);
  const auto via_run = sem_sh(dir, "$P run --semaphore --fg --id fg 'echo a; exit 4'");
  CHECK(via_run.out == "a\n");
  CHECK(via_run.exit_code == 4);
  CHECK(sem_sh(dir, "$P run -j 2 --fg --id fg true").exit_code == 0);
  CHECK(sem_sh(dir, "$P sem --fg --id fg 'kill -9 $$'").exit_code == 128 + 9);
}

// A holder killed with SIGKILL leaks no slot: the kernel drops its lock.
TEST_CASE("Cli.Sem.KilledHolderFreesItsSlot") {
  TempDir dir;
  const auto r = sem_sh(dir,
                        "$P sem --fg --id k 'sleep 2' > /dev/null 2>&1 & pid=$!; "
                        // held once a probe that gives up at once fails
                        "while $P sem --fg --id k --st -0.05 true 2> /dev/null; do sleep 0.02; done; "
                        "kill -9 $pid; wait $pid; "
                        "$P sem --fg --id k --st -1.5 echo free; echo rc=$?");
  CHECK(r.out == "free\nrc=0\n");
  CHECK(r.err.find("timed out") == std::string::npos);
}

// --st > 0 takes the slot anyway after waiting that long; --st < 0 gives up with exit 1.
TEST_CASE("Cli.Sem.TimeoutStealsOrGivesUp") {
  TempDir dir;
  const auto r = sem_sh(dir,
                        "$P sem --id t 'sleep 1.5' > /dev/null; "
                        "$P sem --fg --id t --st -0.2 echo no; echo rc=$?; "
                        "$P sem --fg --id t --st 0.2 echo stolen; echo rc=$?");
  CHECK(r.out == "rc=1\nstolen\nrc=0\n");
  CHECK(r.err.find("Semaphore timed out. Exiting.") != std::string::npos);
  CHECK(r.err.find("Semaphore timed out. Stealing the semaphore.") != std::string::npos);
}

TEST_CASE("Cli.Sem.Usage") {
  TempDir dir;
  CHECK(sem_sh(dir, "$P sem").exit_code == 255);
  CHECK(sem_sh(dir, "$P sem --wait echo").exit_code == 255);
  CHECK(sem_sh(dir, "$P sem --fg --bg echo").exit_code == 255);
  const auto unknown = sem_sh(dir, "$P sem --fg --dry-run echo");
  CHECK(unknown.exit_code == 255);
  CHECK(unknown.err.find("'--dry-run' is not an option of procpool sem") != std::string::npos);
  // Among run's options, sem's are refused with the way to semaphore mode.
  const auto among_run = sem_sh(dir, "$P run --dry-run --fg echo ::: a");
  CHECK(among_run.exit_code == 255);
  CHECK(among_run.err.find("semaphore mode is procpool sem") != std::string::npos);
  CHECK(sem_sh(dir, "$P sem --help").out.find("--id") != std::string::npos);
}
