#include "run_program.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>
#include <stdexcept>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "os/spawn.hpp"

namespace testing {

ProgramResult run_program(const std::vector<std::string>& argv, const std::string& stdin_text,
                          std::chrono::seconds timeout) {
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe failed");
  const auto start = std::chrono::steady_clock::now();
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const procpool::os::FdMap child_fds[] = {{in_pipe[0], 0}, {out_pipe[1], 1}, {err_pipe[1], 2}};
  procpool::os::SpawnRequest request;
  request.path = args[0];
  request.argv = args.data();
  request.fds = child_fds;
  request.close_from = 3;
  request.setup.default_caught_signals = true;  // doctest's crash handlers must not run in the child
  // A program that cannot be exec'd ends with 127, as a shell reports it: exec_error needs no check.
  const pid_t pid = procpool::os::spawn(request).pid;
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ProgramResult result;
  size_t written = 0;
  int in_fd = in_pipe[1];
  if (stdin_text.empty()) { ::close(in_fd); in_fd = -1; }
  ::signal(SIGPIPE, SIG_IGN);
  int out_fd = out_pipe[0], err_fd = err_pipe[0];
  const auto deadline = start + timeout;
  bool killed = false;
  while (out_fd >= 0 || err_fd >= 0) {
    pollfd fds[3];
    int n = 0;
    if (out_fd >= 0) fds[n++] = {out_fd, POLLIN, 0};
    if (err_fd >= 0) fds[n++] = {err_fd, POLLIN, 0};
    if (in_fd >= 0) fds[n++] = {in_fd, POLLOUT, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      if (!killed) ::kill(pid, SIGKILL);
      killed = true;
    }
    ::poll(fds, static_cast<nfds_t>(n), killed ? 100 : static_cast<int>(std::min<long>(left.count(), 1000)));
    for (int i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == in_fd) {
        const ssize_t w = ::write(in_fd, stdin_text.data() + written, stdin_text.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 || written == stdin_text.size()) { ::close(in_fd); in_fd = -1; }
        continue;
      }
      char buf[65536];
      const ssize_t r = ::read(fds[i].fd, buf, sizeof buf);
      std::string& dest = fds[i].fd == out_fd ? result.out : result.err;
      if (r > 0) {
        dest.append(buf, static_cast<size_t>(r));
      } else if (r == 0 || (r < 0 && errno != EINTR)) {
        if (fds[i].fd == out_fd) { ::close(out_fd); out_fd = -1; } else { ::close(err_fd); err_fd = -1; }
      }
    }
  }
  if (in_fd >= 0) ::close(in_fd);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  return result;
}

std::string example_path(const std::string& name) {
  const char* dir = std::getenv("PROCPOOL_EXAMPLES_DIR");
  if (dir == nullptr) throw std::runtime_error("PROCPOOL_EXAMPLES_DIR is not set (run through meson test)");
  return std::string(dir) + "/" + name;
}

int count_matching_lines(const std::string& text, const std::string& pattern) {
  const std::regex re(pattern);
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line))
    if (std::regex_search(line, re)) ++n;
  return n;
}

std::vector<int> zombie_children(int parent) {
  std::vector<int> zombies;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string content;
    if (!std::getline(stat, content)) continue;
    const auto close_paren = content.rfind(')');
    if (close_paren == std::string::npos) continue;
    std::istringstream fields(content.substr(close_paren + 2));
    char state = 0;
    int ppid = 0;
    fields >> state >> ppid;
    if (ppid == parent && state == 'Z') zombies.push_back(std::stoi(name));
  }
  return zombies;
}

std::vector<std::string> procpool_shm_entries() {
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm")) {
    const std::string name = entry.path().filename();
    if (name.find("procpool") != std::string::npos) found.push_back(name);
  }
  return found;
}

std::string read_text_file(const std::string& path) {
  std::ifstream file(path);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

} // namespace testing
