// Checks that a process asked to act as a procpool child (argv `--procpool-spawn FD PID`, or
// $PROCPOOL_FORKSERVER_FD) really was started by procpool in its parent. Whoever launches a
// program controls its argv, environment and inherited descriptors, but not its parent's
// memory or descriptor table: every check below rests on the latter.
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sys/auxv.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "os/fd.hpp"
#include "process_internal.hpp"

namespace procpool::detail {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

bool same_file(const char* a, const char* b, std::string& why) {
  struct stat sa {}, sb {};
  if (::stat(a, &sa) != 0) {
    why = std::string("cannot stat ") + a + ": " + errno_text(errno);
    return false;
  }
  if (::stat(b, &sb) != 0) {
    why = std::string("cannot stat ") + b + ": " + errno_text(errno);
    return false;
  }
  if (sa.st_dev != sb.st_dev || sa.st_ino != sb.st_ino) {
    why = std::string(a) + " is not the same file as " + b;
    return false;
  }
  return true;
}

/// The "flags:" field of /proc/<pid>/fdinfo/<fd> (octal) and its "ino:" field.
bool read_fdinfo(pid_t pid, int fd, unsigned long& flags, unsigned long long& ino) {
  const auto text = os::read_file("/proc/" + std::to_string(pid) + "/fdinfo/" + std::to_string(fd));
  if (!text || text->empty()) return false;
  bool have_flags = false, have_ino = false;
  for (const char* line = text->c_str(); line != nullptr && *line != '\0';) {
    if (std::strncmp(line, "flags:", 6) == 0) have_flags = std::sscanf(line + 6, "%lo", &flags) == 1;
    if (std::strncmp(line, "ino:", 4) == 0) have_ino = std::sscanf(line + 4, "%llu", &ino) == 1;
    line = std::strchr(line, '\n');
    if (line != nullptr) ++line;
  }
  return have_flags && have_ino;
}

} // namespace

bool verify_launcher(pid_t claimed_parent, std::string& why) {
  // Never in a setuid/setgid (or capability-raising) program: whoever starts it is less
  // privileged than the code it would run.
  if (::getauxval(AT_SECURE) != 0) {
    why = "the program runs with raised privileges (setuid/setgid)";
    return false;
  }
  if (claimed_parent <= 0 || claimed_parent != ::getppid()) {
    why = "the named parent " + std::to_string(claimed_parent) + " is not this process's parent (" +
          std::to_string(::getppid()) + ")";
    return false;
  }
  // procpool re-runs its own binary: a parent running another program did not start us.
  return same_file(("/proc/" + std::to_string(claimed_parent) + "/exe").c_str(), "/proc/self/exe", why);
}

int open_spawn_payload(pid_t parent, int fd, std::string& why) {
  const std::string path = "/proc/" + std::to_string(parent) + "/fd/" + std::to_string(fd);
  char target[256] = {};
  const ssize_t len = ::readlink(path.c_str(), target, sizeof target - 1);
  if (len < 0 || std::strncmp(target, kSpawnPayloadLink, std::strlen(kSpawnPayloadLink)) != 0) {
    why = path + " is not a procpool spawn payload";
    return -1;
  }
  const int payload = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (payload < 0) {
    why = "cannot open " + path + ": " + errno_text(errno);
    return -1;
  }
  // Sealed: the parent finished writing it and nobody can change it now.
  const int seals = ::fcntl(payload, F_GET_SEALS);
  constexpr int kWantedSeals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
  // Close-on-exec in the parent's table: the parent opened it itself after its own exec (a
  // descriptor planted by whoever launched the parent cannot have the flag), and the same
  // inode as what we opened (not swapped since).
  unsigned long flags = 0;
  unsigned long long ino = 0;
  struct stat st {};
  if (seals < 0 || (seals & kWantedSeals) != kWantedSeals || !read_fdinfo(parent, fd, flags, ino) || (flags & O_CLOEXEC) == 0 ||
      ::fstat(payload, &st) != 0 || static_cast<unsigned long long>(st.st_ino) != ino) {
    ::close(payload);
    why = path + " is not a sealed, close-on-exec procpool spawn payload of the parent";
    return -1;
  }
  return payload;
}

bool verify_forkserver_socket(int fd, pid_t parent, std::string& why) {
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
    why = "descriptor " + std::to_string(fd) + " is not a socket";
    return false;
  }
  // The socketpair's other end must have been made by the parent, under our own user.
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.pid != parent || cred.uid != ::getuid()) {
    why = "the socket on descriptor " + std::to_string(fd) + " does not lead to the parent";
    return false;
  }
  return true;
}

} // namespace procpool::detail
