// A small program that calls procpool::init(), for tests that launch it in crafted ways
// (tests/launch_test.cpp) and for what only a whole program shows (exit handlers).
//   launch_helper normal                 prints "normal run", exits 0
//   launch_helper payload FILE MARKER    writes a spawn payload that would create MARKER
//   launch_helper attack-self MODE MARKER  launches itself as `--procpool-spawn FD PID` with a
//                                        crafted payload on its own fd (MODE: plain | sealed)
//   launch_helper start-method           prints get_start_method() or the ValueError
//   launch_helper atexit FILE            exit handlers of the program and of its children
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <tuple>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <procpool/procpool.hpp>

#include "../../lib/process_internal.hpp"

namespace {

// The attacker's wanted target: proof of being called is the marker file.
void pwn(std::string marker) {
  std::ofstream(marker) << "pwned\n";
}

std::string crafted_payload(const std::string& marker) {
  procpool::detail::ChildPayload payload;
  payload.name = "Evil";
  payload.parent_pid = ::getppid();
  std::tuple<std::string> args(marker);
  if (!procpool::detail::make_portable_target(payload.target, &pwn, args)) std::abort();
  return procpool::codec::encode(payload);
}

int memfd_with(const std::string& bytes, bool sealed) {
  const int fd = ::memfd_create(procpool::detail::kSpawnPayloadName, sealed ? MFD_ALLOW_SEALING : 0);
  if (fd < 0 || ::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) std::abort();
  if (sealed && ::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) std::abort();
  return fd;
}

// A process that is this very program, launching itself in child mode with a payload it
// crafted (what a program passing user arguments to a copy of itself could be made to do).
int attack_self(const std::string& mode, const std::string& marker) {
  const int fd = memfd_with(crafted_payload(marker), mode == "sealed");
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    const std::string fd_text = std::to_string(fd), parent_text = std::to_string(parent);
    ::execl("/proc/self/exe", "launch_helper", "--procpool-spawn", fd_text.c_str(), parent_text.c_str(), nullptr);
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::printf("child exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return 0;
}

std::string g_atexit_file;
void append(const std::string& text) { std::ofstream(g_atexit_file, std::ios::app) << text << "\n"; }
void plain_atexit_handler() { append("spawn child std::atexit"); }

void child_registers(std::string file, std::string who) {
  g_atexit_file = file;
  procpool::atexit_register([who] { append(who + " child handler"); });
  if (who == "spawn") std::atexit(plain_atexit_handler);
}

int atexit_mode(const std::string& file) {
  g_atexit_file = file;
  procpool::atexit_register([] { append("main handler"); });
  for (const auto method : {procpool::StartMethod::Fork, procpool::StartMethod::Spawn}) {
    const std::string who(procpool::to_string(method));
    procpool::Process p(procpool::ProcessOptions{.start_method = method}, &child_registers, file, who);
    p.start();
    p.join();
    append(who + " joined exit " + std::to_string(p.exitcode().value_or(-99)));
  }
  return 0;  // the main handler runs now, once
}

} // namespace

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "normal") {
    std::printf("normal run\n");
    return 0;
  }
  if (mode == "payload" && argc == 4) {
    std::ofstream(argv[2], std::ios::binary) << crafted_payload(argv[3]);
    return 0;
  }
  if (mode == "attack-self" && argc == 4) return attack_self(argv[2], argv[3]);
  if (mode == "start-method") {
    try {
      std::printf("%s\n", std::string(procpool::to_string(procpool::get_start_method())).c_str());
    } catch (const procpool::ValueError& e) {
      std::printf("ValueError: %s\n", e.what());
    }
    try {
      procpool::Process p(&pwn, std::string("/dev/null"));
      p.start();
      p.join();
      std::printf("started\n");
    } catch (const procpool::ValueError& e) {
      std::printf("start: ValueError\n");
    }
    return 0;
  }
  if (mode == "atexit" && argc == 3) return atexit_mode(argv[2]);
  std::fprintf(stderr, "usage: launch_helper normal|payload|attack-self|start-method|atexit ...\n");
  return 64;
}
