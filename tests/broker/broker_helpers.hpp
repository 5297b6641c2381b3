#pragma once
// Helpers for the broker tests (suite broker): a real redis-server per test, started on a free port
// plus a unix socket in a temp dir, killed by pid at teardown (also when a check fails), and workers
// and submitters run as real procpool processes (clitest::Background).
#include "../cli/cli_helpers.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>
#include <cstdlib>
#include <string>
#include <vector>

namespace brokertest {

using namespace clitest;
using namespace std::chrono_literals;

/// Exits 77 (meson: skipped) when redis-server is not installed.
inline std::string redis_server_path() {
  for (const char* dir : {"/usr/bin", "/usr/local/bin", "/usr/sbin"}) {
    const std::string path = std::string(dir) + "/redis-server";
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  std::puts("SKIP: redis-server not found");
  std::exit(77);
}

/// A port nobody listens on right now (bind 127.0.0.1:0, read it, close).
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

/// One command over a fresh connection to the server's unix socket (a file: it reaches a server in
/// another network namespace too), inline protocol; returns the first reply line ("" on failure).
inline std::string redis_inline(const std::string& socket_path, const std::string& command, const std::string& password = "") {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path.c_str());
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "";
  }
  std::string request = (password.empty() ? "" : "AUTH " + password + "\r\n") + command + "\r\n";
  (void)!::write(fd, request.data(), request.size());
  std::string reply;
  char buf[4096];
  const long lines_wanted = password.empty() ? 1 : 2;
  while (std::count(reply.begin(), reply.end(), '\n') < lines_wanted) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    reply.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (!password.empty()) reply = reply.substr(reply.find('\n') + 1);
  return reply.substr(0, reply.find('\r'));
}

/// A program started in the background (any argv): clitest's BackgroundProgram.
using Spawned = BackgroundProgram;

/// redis-server as a child of the test, with PDEATHSIG; stopped by pid.
struct RedisServer {
  TempDir dir;
  int port = 0;
  pid_t pid = -1;
  std::vector<std::string> extra;  // more config, e.g. {"--appendonly", "yes"}
  std::string password;
  std::vector<std::string> launcher;  // e.g. nsenter into a network namespace
  std::string bind = "127.0.0.1";

  explicit RedisServer(std::vector<std::string> more = {}, std::string pass = "", std::vector<std::string> via = {},
                       std::string bind_to = "127.0.0.1")
      : extra(std::move(more)), password(std::move(pass)), launcher(std::move(via)), bind(std::move(bind_to)) {
    port = free_port();
    start();
  }
  void start() {
    const std::string server = redis_server_path();
    std::vector<std::string> args = launcher;
    args.insert(args.end(), {server, "--port", std::to_string(port), "--bind", bind, "--unixsocket",
                                  socket(), "--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir",
                             dir.path.string(), "--logfile", dir / "redis.log"});
    if (!password.empty()) args.insert(args.end(), {"--requirepass", password});
    args.insert(args.end(), extra.begin(), extra.end());
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      const int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0);
      ::dup2(null, 1);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
    REQUIRE_MESSAGE(eventually([&] { return redis_inline(socket(), "PING", password) == "+PONG"; }, 2000ms),
                    "redis-server did not answer PING within 2 s");
  }
  void kill9() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    pid = -1;
  }
  ~RedisServer() { kill9(); }
  [[nodiscard]] std::string socket() const { return dir / "redis.sock"; }
  [[nodiscard]] std::string url() const { return "redis://127.0.0.1:" + std::to_string(port) + "/0"; }
  [[nodiscard]] std::string unix_url() const { return "redis+unix://" + socket(); }
  [[nodiscard]] std::string cmd(const std::string& command) const { return redis_inline(socket(), command, password); }
};

/// One line of /proc/PID/stat, the fields the tests use.
struct ProcStat {
  pid_t pid = 0, ppid = 0, pgrp = 0;
  std::string comm, state;
};

/// Calls `fn` for every process in /proc.
template <class Fn>
void for_each_process(Fn fn) {
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string content;
    if (!std::getline(stat, content)) continue;
    const auto open = content.find('(');
    const auto close = content.rfind(')');
    ProcStat p;
    p.pid = std::stoi(name);
    p.comm = content.substr(open + 1, close - open - 1);
    std::istringstream rest(content.substr(close + 2));
    rest >> p.state >> p.ppid >> p.pgrp;
    fn(p);
  }
}

/// Process groups led by a job (the worker's children that lead their own group), from /proc.
inline std::vector<pid_t> groups_led_by_children_of(pid_t parent) {
  std::vector<pid_t> leaders;
  for_each_process([&](const ProcStat& p) {
    if (p.ppid == parent && p.pgrp == p.pid && p.state != "Z") leaders.push_back(p.pid);
  });
  return leaders;
}

/// Whether any live process is in process group `group`.
inline bool group_alive(pid_t group) { return ::kill(-group, 0) == 0; }

/// Every Seq of a joblog, counted.
inline std::map<long, int> seq_counts(const std::string& joblog) {
  std::map<long, int> counts;
  for (const auto& row : joblog_rows(joblog)) ++counts[std::stol(row.at(0))];
  return counts;
}

} // namespace brokertest
