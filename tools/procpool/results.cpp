#include "results.hpp"

#include "options.hpp"

#include "os/fd.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace procpool::cli {
namespace {

using Fd = os::UniqueFd;  // closes on scope exit unless released: every error path leaves nothing open

[[noreturn]] void fail(const std::string& path, const std::string& what, int error) {
  throw ResultsError(fmt::format("--results: {} '{}': {}", what, path, std::strerror(error)));
}

/// Why `name` under `dir_fd` could not be opened without following links, for the message.
[[noreturn]] void fail_open(int dir_fd, const char* name, const std::string& path, int error) {
  struct stat st {};
  if ((error == ELOOP || error == ENOTDIR) && ::fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISLNK(st.st_mode))
    throw ResultsError(fmt::format("--results: '{}' is a symbolic link: refusing to write through it", path));
  fail(path, "cannot open", error);
}

/// Opens DIR/SEQ/name for writing: created if missing, an existing regular file with no other
/// link emptied. Checks are made on the open descriptor, so nothing can be swapped in between.
Fd open_result_file(int seq_fd, const char* name, const std::string& path) {
  // O_NONBLOCK: a FIFO planted there must not hang procpool; cleared below for the regular file.
  Fd fd(::openat(seq_fd, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC, 0644));
  if (fd.get() < 0) fail_open(seq_fd, name, path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail(path, "cannot stat", errno);
  if (!S_ISREG(st.st_mode)) throw ResultsError(fmt::format("--results: '{}' is not a regular file", path));
  // A hard link to someone else's file would have us truncate that file.
  if (st.st_nlink > 1)
    throw ResultsError(fmt::format("--results: '{}' has {} hard links: refusing to overwrite it", path, st.st_nlink));
  if (::fcntl(fd.get(), F_SETFL, 0) != 0) fail(path, "cannot set flags of", errno);
  if (::ftruncate(fd.get(), 0) != 0) fail(path, "cannot truncate", errno);
  return fd;
}

void write_all(int fd, const std::string& data, const std::string& path) {
  if (const int err = os::write_all(fd, data); err != 0) fail(path, "cannot write", err);
}

} // namespace

ResultsDir::ResultsDir(const std::string& path) : path_(path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) throw UsageError(fmt::format("--results: cannot create '{}': {}", path, ec.message()));
  fd_ = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd_ < 0) throw UsageError(fmt::format("--results: cannot open '{}': {}", path, std::strerror(errno)));
}

ResultsDir::~ResultsDir() {
  if (fd_ >= 0) ::close(fd_);
}

std::string ResultsDir::file_path(std::uint64_t seq, const char* name) const {
  return fmt::format("{}/{}/{}", path_, seq, name);
}

ResultsDir::JobFiles ResultsDir::create(std::uint64_t seq, const std::string& command) const {
  const std::string name = std::to_string(seq);
  const std::string dir = fmt::format("{}/{}", path_, name);
  if (::mkdirat(fd_, name.c_str(), 0755) != 0 && errno != EEXIST) fail(dir, "cannot create directory", errno);
  Fd seq_fd(::openat(fd_, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (seq_fd.get() < 0) fail_open(fd_, name.c_str(), dir, errno);

  const std::string cmd_path = dir + "/cmd";
  Fd cmd = open_result_file(seq_fd.get(), "cmd", cmd_path);
  write_all(cmd.get(), command + "\n", cmd_path);
  if (::close(cmd.release()) != 0) fail(cmd_path, "cannot write", errno);  // NFS reports ENOSPC late
  Fd out = open_result_file(seq_fd.get(), "stdout", dir + "/stdout");
  Fd err = open_result_file(seq_fd.get(), "stderr", dir + "/stderr");
  return {out.release(), err.release()};
}

} // namespace procpool::cli
