// The practical limits for a batch runner (bench/cli.sh): start every line of a file, keeping N
// children running, with no output capture, no log, nothing else.
//   cli_raw_spawn N FILE            posix_spawn `/bin/sh -c LINE` (a runner that goes through the shell)
//   cli_raw_spawn --direct N FILE   vfork + execve of the line's words, the program looked up in $PATH
//                                   once per name (a runner that execs directly, as `procpool run` does)
// Exits 1 when a job failed. The workloads' lines are plain words: no quoting is handled.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace {
// The first executable `name` in $PATH (names with a slash as they are); empty if none.
std::string find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

pid_t start_shell(std::string& line) {
  char sh[] = "sh", dash_c[] = "-c";
  char* args[] = {sh, dash_c, line.data(), nullptr};
  pid_t pid = 0;
  return ::posix_spawn(&pid, "/bin/sh", nullptr, nullptr, args, environ) == 0 ? pid : -1;
}

pid_t start_direct(const std::string& line, std::map<std::string, std::string>& programs) {
  std::vector<std::string> words;
  std::istringstream in(line);
  for (std::string w; in >> w;) words.push_back(std::move(w));
  if (words.empty()) return -1;
  auto [it, added] = programs.try_emplace(words[0]);
  if (added) it->second = find_program(words[0]);
  if (it->second.empty()) return -1;
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  const char* program = it->second.c_str();
  const pid_t pid = ::vfork();  // everything the child needs is prepared: it only execs
  if (pid == 0) {
    ::execve(program, argv.data(), environ);
    ::_exit(127);
  }
  return pid;
}
} // namespace

int main(int argc, char** argv) {
  const bool direct = argc == 4 && std::strcmp(argv[1], "--direct") == 0;
  if (argc != (direct ? 4 : 3)) {
    std::cerr << "usage: cli_raw_spawn [--direct] N FILE\n";
    return 2;
  }
  const int parallelism = std::atoi(argv[direct ? 2 : 1]);
  std::ifstream in(argv[direct ? 3 : 2]);
  std::map<std::string, std::string> programs;
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
    const pid_t pid = direct ? start_direct(line, programs) : start_shell(line);
    if (pid < 0) return 1;
    ++running;
  }
  while (running > 0) wait_one();
  return failed > 0 ? 1 : 0;
}
