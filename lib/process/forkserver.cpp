// The forkserver: a single-threaded, fresh image of the program (started through init()) that
// forks children on request, so a parent that runs threads never forks itself.
//
// Protocol on the control socket (SOCK_STREAM): the client sends an 8-byte payload length with
// the child's status socket attached (SCM_RIGHTS), then the payload. The server forks, writes
// the child's pid (4 bytes) to the status socket, and later its raw wait status (4 bytes).
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

#include <poll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "os/child_setup.hpp"
#include "os/fd.hpp"
#include "os/spawn.hpp"
#include "procpool/codec.hpp"
#include "procpool/errors.hpp"
#include "procpool/log.hpp"
#include "process_internal.hpp"

extern char** environ;

namespace procpool::detail {
namespace {

struct Client {
  std::mutex mutex;
  int control_fd = -1;
  pid_t server_pid = 0;
};

// Constant-initialised (no guard); a child forgets it (forkserver_forget_after_fork).
constinit Client* g_client = nullptr;
Client*& client_slot() { return g_client; }
std::mutex client_slot_mutex;

void start_server(Client& client) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) throw_errno("procpool: forkserver socketpair failed", errno);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  // The server gets the socket as descriptor 3 and nothing else beyond 0-2 (close_fds).
  constexpr int kServerFd = 3;
  env_strings.push_back("PROCPOOL_FORKSERVER_FD=" + std::to_string(kServerFd));
  env_strings.push_back("PROCPOOL_PARENT_PID=" + std::to_string(::getpid()));
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string argv0 = program_argv0().empty() ? "procpool-forkserver" : program_argv0();
  char* argv[] = {argv0.data(), nullptr};

  const os::FdMap fds[] = {{sv[1], kServerFd}};
  os::SpawnRequest request;
  request.path = "/proc/self/exe";
  request.argv = argv;
  request.envp = envp.data();
  request.fds = fds;
  request.close_from = kServerFd + 1;
  request.setup.parent = ::getpid();
  request.setup.default_caught_signals = true;  // the program's handlers must not run on our memory
  os::Spawned server;
  try {
    run_on_stable_thread([&] { server = os::spawn(request); });
  } catch (const std::system_error& e) {
    ::close(sv[0]);
    ::close(sv[1]);
    throw_errno("procpool: cannot start the forkserver", e.code().value());
  }
  ::close(sv[1]);
  if (server.exec_error != 0) {
    ::close(sv[0]);
    ::waitpid(server.pid, nullptr, 0);
    throw_errno("procpool: cannot start the forkserver", server.exec_error);
  }
  const pid_t pid = server.pid;
  client.control_fd = sv[0];
  client.server_pid = pid;
  logger().debug("forkserver started (pid {})", pid);
}

} // namespace

pid_t forkserver_launch(const std::string& payload, int& status_fd) {
  Client* client = nullptr;
  {
    std::lock_guard lock(client_slot_mutex);
    if (client_slot() == nullptr) client_slot() = new Client();  // lives as long as the process
    client = client_slot();
  }
  std::lock_guard lock(client->mutex);
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (client->control_fd < 0) start_server(*client);
    int sp[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) throw_errno("procpool: socketpair failed", errno);
    const std::uint64_t size = payload.size();
    bool sent = os::send_with_fd(client->control_fd, &size, sizeof size, sp[1]) == 0;
    sent = sent && os::write_all(client->control_fd, payload) == 0;
    ::close(sp[1]);
    std::int32_t pid = 0;
    if (sent && os::read_exact(sp[0], &pid, sizeof pid)) {
      status_fd = sp[0];
      return pid;
    }
    // The server is gone (killed?): start a new one and try once more.
    ::close(sp[0]);
    ::close(client->control_fd);
    client->control_fd = -1;
    ::waitpid(client->server_pid, nullptr, WNOHANG);
  }
  throw ProcessError("procpool: the forkserver died and could not be restarted");
}

void forkserver_forget_after_fork() {
  client_slot() = nullptr;
  // Another thread of the parent may have held it at fork time (it starts the server under it).
  new (&client_slot_mutex) std::mutex();
}

void forkserver_main(int control_fd, pid_t expected_parent) {
  os::ChildSetup{.parent = expected_parent}.apply();
  process_name_slot() = "ForkServer";
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &chld, nullptr);
  const int sfd = ::signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) ::_exit(1);
  const pid_t server = ::getpid();
  std::map<pid_t, int> status_fds;

  auto reap = [&] {
    int status = 0;
    pid_t pid = 0;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      auto it = status_fds.find(pid);
      if (it == status_fds.end()) continue;
      const std::int32_t raw = status;
      (void)os::write_all(it->second, &raw, sizeof raw);
      ::close(it->second);
      status_fds.erase(it);
    }
  };

  for (;;) {
    pollfd fds[2] = {{control_fd, POLLIN, 0}, {sfd, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents != 0) {
      signalfd_siginfo info;
      while (::read(sfd, &info, sizeof info) > 0) {}
      reap();
    }
    if (fds[0].revents == 0) continue;

    std::uint64_t size = 0;
    const int status_fd = os::recv_with_fd(control_fd, &size, sizeof size);
    if (status_fd < 0) break;  // the parent closed the socket: done
    std::string payload(size, '\0');
    if (!os::read_exact(control_fd, payload.data(), payload.size())) break;

    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(control_fd);
      ::close(sfd);
      ::close(status_fd);
      for (auto& [child, fd] : status_fds) ::close(fd);
      ::sigprocmask(SIG_UNBLOCK, &chld, nullptr);
      ChildPayload who;
      try {
        who = codec::decode<ChildPayload>(payload);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "procpool: forkserver child cannot read its task: %s\n", e.what());
        ::_exit(1);
      }
      run_portable_child(who, server);
    }
    if (pid < 0) {
      ::close(status_fd);  // the client sees EOF instead of a pid
      continue;
    }
    const std::int32_t pid32 = pid;
    (void)os::write_all(status_fd, &pid32, sizeof pid32);
    status_fds[pid] = status_fd;
    reap();  // a very short child may already have ended
  }
  ::_exit(0);
}

} // namespace procpool::detail
