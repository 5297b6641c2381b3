// The practical limit for a batch runner: posix_spawn `sh -c LINE` for every line of a file,
// keeping N children running, with no output capture, no log, nothing else.
// Usage: cli_raw_spawn N FILE
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: cli_raw_spawn N FILE\n";
    return 2;
  }
  const int parallelism = std::atoi(argv[1]);
  std::ifstream in(argv[2]);
  std::string line;
  int running = 0, failed = 0;
  auto wait_one = [&] {
    int status = 0;
    if (::wait(&status) > 0) {
      --running;
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
    }
  };
  while (std::getline(in, line)) {
    if (running == parallelism) wait_one();
    char sh[] = "sh", dash_c[] = "-c";
    char* args[] = {sh, dash_c, line.data(), nullptr};
    pid_t pid = 0;
    if (::posix_spawn(&pid, "/bin/sh", nullptr, nullptr, args, environ) != 0) return 1;
    ++running;
  }
  while (running > 0) wait_one();
  return failed > 0 ? 1 : 0;
}
