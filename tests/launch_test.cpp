// Crafted launches of a program that calls procpool::init() (issue 10, items 1, 3, 19, 24):
// child mode must only be entered by children that procpool itself started.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <procpool/procpool.hpp>

#include "run_program.hpp"

namespace fs = std::filesystem;

namespace {

std::string helper() { return (fs::read_symlink("/proc/self/exe").parent_path() / "launch_helper").string(); }

struct TempDir {
  fs::path path;
  TempDir() {
    char pattern[] = "/tmp/procpool-launch-XXXXXX";
    path = ::mkdtemp(pattern);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

} // namespace

// The launcher is the test program, not the helper: a payload inherited on a descriptor and
// naming the helper's own function must not run, whatever the claimed parent.
TEST_CASE("Launch.Spawn.CraftedArgvFromAnotherProgramIsRefused") {
  TempDir dir;
  const fs::path marker = dir.path / "marker";
  const fs::path payload_file = dir.path / "payload";
  REQUIRE(testing::run_program({helper(), "payload", payload_file.string(), marker.string()}).exit_code == 0);
  const std::string bytes = slurp(payload_file);
  REQUIRE_FALSE(bytes.empty());
  const int fd = ::memfd_create("procpool-spawn", 0);  // inherited by the helper
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  for (const std::string& parent : {std::to_string(::getpid()), std::string("1"), std::string("0")}) {
    CAPTURE(parent);
    const auto r = testing::run_program({helper(), "--procpool-spawn", std::to_string(fd), parent}, "", std::chrono::seconds(30));
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("refusing to run as a spawned child") != std::string::npos);
    CHECK(r.out.empty());
    CHECK_FALSE(fs::exists(marker));
  }
  const auto bad_argc = testing::run_program({helper(), "--procpool-spawn"}, "", std::chrono::seconds(30));
  CHECK(bad_argc.exit_code == 2);
  ::close(fd);
}

// The launcher is the same program (parent pid and executable check out), but the payload is a
// descriptor it did not create as procpool does: plain, or sealed but inheritable.
TEST_CASE("Launch.Spawn.PayloadNotMadeByProcpoolIsRefused") {
  for (const std::string mode : {"plain", "sealed"}) {
    CAPTURE(mode);
    TempDir dir;
    const fs::path marker = dir.path / "marker";
    const auto r = testing::run_program({helper(), "attack-self", mode, marker.string()}, "", std::chrono::seconds(30));
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("child exit 2") != std::string::npos);
    CHECK(r.err.find("refusing to run as a spawned child") != std::string::npos);
    CHECK_FALSE(fs::exists(marker));
  }
}

// A stray PROCPOOL_FORKSERVER_FD must not turn a program into a fork server.
TEST_CASE("Launch.Forkserver.StrayEnvironmentIsIgnored") {
  for (const std::string fd : {"0", "1", "2", "3", "-1", "junk"}) {
    CAPTURE(fd);
    const auto r = testing::run_program({"/usr/bin/env", "PROCPOOL_FORKSERVER_FD=" + fd,
                                         "PROCPOOL_PARENT_PID=" + std::to_string(::getpid()), helper(), "normal"},
                                        "", std::chrono::seconds(30));
    CHECK(r.exit_code == 0);
    CHECK(r.out == "normal run\n");
    CHECK(r.err.find("ignoring PROCPOOL_FORKSERVER_FD") != std::string::npos);
  }
}

// Issue 10 item 19: a bogus $PROCPOOL_START_METHOD is a catchable ValueError, not std::terminate.
TEST_CASE("Launch.StartMethod.BogusEnvironmentIsValueError") {
  const auto r = testing::run_program({"/usr/bin/env", "PROCPOOL_START_METHOD=bogus", helper(), "start-method"}, "",
                                      std::chrono::seconds(30));
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("ValueError: procpool: $PROCPOOL_START_METHOD: ") != std::string::npos);
  CHECK(r.out.find("'bogus'") != std::string::npos);
  CHECK(r.out.find("\"fork\", \"spawn\" or \"forkserver\"") != std::string::npos);
  CHECK(r.out.find("start: ValueError") != std::string::npos);
  const auto ok = testing::run_program({"/usr/bin/env", "PROCPOOL_START_METHOD=spawn", helper(), "start-method"}, "",
                                       std::chrono::seconds(30));
  CHECK(ok.out == "spawn\nstarted\n");
}

// Issue 10 item 24: a child's own exit handlers run once; the parent's never run in a child.
TEST_CASE("Launch.Atexit.ChildHandlersRunParentsDoNot") {
  TempDir dir;
  const fs::path file = dir.path / "log";
  const auto r = testing::run_program({helper(), "atexit", file.string()}, "", std::chrono::seconds(60));
  CHECK(r.exit_code == 0);
  CHECK(slurp(file) ==
        "fork child handler\n"
        "fork joined exit 0\n"
        "spawn child handler\n"
        "spawn child std::atexit\n"
        "spawn joined exit 0\n"
        "main handler\n");
}
