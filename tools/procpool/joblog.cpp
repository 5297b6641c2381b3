#include "joblog.hpp"

#include "options.hpp"

#include "os/fd.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace procpool::cli {

std::string format_joblog_entry(const JobLogEntry& e) {
  std::string command = e.command;
  // A newline inside the command would split the record; GNU parallel would write it raw.
  for (auto& c : command)
    if (c == '\n') c = ' ';
  std::string host = e.host.empty() ? ":" : e.host;
  for (auto& c : host)
    if (c == '\t' || c == '\n') c = ' ';
  return fmt::format("{}\t{}\t{:.3f}\t{:10.3f}\t{}\t{}\t{}\t{}\t{}\n", e.seq, host, e.start_epoch, e.runtime, e.send,
                     e.receive, e.exitval, e.signal, command);
}

namespace {

void write_all(int fd, const std::string& data, const std::string& path) {
  if (const int err = os::write_all(fd, data); err != 0)
    throw UsageError(fmt::format("cannot write joblog '{}': {}", path, std::strerror(err)));
}

} // namespace

namespace {

/// Opens an existing file again through its O_PATH descriptor: the same inode, whatever the path
/// names by now.
int reopen(int path_fd, int flags) {
  return ::open(fmt::format("/proc/self/fd/{}", path_fd).c_str(), flags | O_CLOEXEC | O_NOCTTY);
}

} // namespace

JobLogWriter::JobLogWriter(const std::string& path, bool append) : path_(path) {
  if (path == "-") {  // GNU parallel's --joblog -: stdout, between the jobs' output
    if (append) throw UsageError("--joblog -: --resume needs a regular file to read");
    fd_ = ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    if (fd_ < 0) throw UsageError(fmt::format("cannot use stdout for the joblog: {}", std::strerror(errno)));
    write_all(fd_, kJoblogHeader, path_);
    return;
  }
  auto cannot_open = [&] { return UsageError(fmt::format("cannot open joblog '{}': {}", path, std::strerror(errno))); };
  // The type is checked before the file is really opened (O_PATH opens nothing): opening a device
  // can have effects, a FIFO open blocks, and nothing may be truncated before the check.
  const int path_fd = ::open(path.c_str(), O_PATH | O_CLOEXEC);
  if (path_fd < 0 && errno != ENOENT) throw cannot_open();
  if (path_fd < 0) {
    // A new file. O_NONBLOCK: should a FIFO appear at the path meanwhile, the open must not hang.
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0644);
    if (fd_ < 0) throw cannot_open();
  }
  struct stat st {};
  if (::fstat(path_fd >= 0 ? path_fd : fd_, &st) != 0) throw cannot_open();
  const bool stream = S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode);
  if (!S_ISREG(st.st_mode) && !stream)
    throw UsageError(fmt::format("joblog '{}' is not a regular file, a pipe or a terminal: refusing to use it", path));
  if (stream && append)
    throw UsageError(fmt::format("joblog '{}' is not a regular file: --resume needs one to read", path));
  if (path_fd >= 0) {
    // A pipe or a terminal is written only; a FIFO's open waits for its reader, as with any writer.
    fd_ = reopen(path_fd, stream ? O_WRONLY : O_RDWR);
    ::close(path_fd);
    if (fd_ < 0) throw cannot_open();
  }
  if (stream) {
    if (::isatty(fd_) != 1 && !S_ISFIFO(st.st_mode))  // /dev/zero, /dev/null, a tape...
      throw UsageError(fmt::format("joblog '{}' is not a regular file, a pipe or a terminal: refusing to use it", path));
    write_all(fd_, kJoblogHeader, path_);
    return;
  }
  ::fcntl(fd_, F_SETFL, append ? O_APPEND : 0);
  if (!append && ::ftruncate(fd_, 0) != 0)
    throw UsageError(fmt::format("cannot truncate joblog '{}': {}", path, std::strerror(errno)));
  const off_t size = ::lseek(fd_, 0, SEEK_END);
  if (size > 0) {
    // A writer killed in mid-line (possible for GNU parallel; for procpool only if the kernel split
    // one write) leaves a torn last line: drop it, its job was not logged and runs again.
    char last = '\n';
    if (::pread(fd_, &last, 1, size - 1) == 1 && last != '\n') {
      off_t cut = size - 1;
      char c = 0;
      while (cut > 0 && ::pread(fd_, &c, 1, cut - 1) == 1 && c != '\n') --cut;
      std::cerr << fmt::format("procpool: joblog '{}': dropping an incomplete last line\n", path);
      if (::ftruncate(fd_, cut) != 0)
        throw UsageError(fmt::format("cannot repair joblog '{}': {}", path, std::strerror(errno)));
    }
  }
  if (::lseek(fd_, 0, SEEK_END) == 0) write_all(fd_, kJoblogHeader, path_);
}

JobLogWriter::~JobLogWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void JobLogWriter::write(const JobLogEntry& entry) { write_all(fd_, format_joblog_entry(entry), path_); }

namespace {

bool parse_int(const std::string& field, long long& out) {
  std::size_t start = field.find_first_not_of(' ');
  if (start == std::string::npos) return false;
  const char* begin = field.c_str() + start;
  char* end = nullptr;
  errno = 0;
  out = std::strtoll(begin, &end, 10);
  return errno == 0 && end != begin && *end == '\0';
}

bool parse_real(const std::string& field, double& out) {
  std::size_t start = field.find_first_not_of(' ');
  if (start == std::string::npos) return false;
  const char* begin = field.c_str() + start;
  char* end = nullptr;
  errno = 0;
  out = std::strtod(begin, &end);
  return errno == 0 && end != begin && *end == '\0';
}

} // namespace

namespace {

/// Reads a file line by line with pread from offset 0, so the shared file offset is left alone.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}
  /// The next line without its '\n'; `complete` is false for a last line with no '\n'.
  bool next(std::string& line, bool& complete) {
    line.clear();
    for (;;) {
      const auto nl = buffer_.find('\n', pos_);
      if (nl != std::string::npos) {
        line.assign(buffer_, pos_, nl - pos_);
        pos_ = nl + 1;
        complete = true;
        return true;
      }
      if (eof_) {
        if (pos_ >= buffer_.size()) return false;
        line.assign(buffer_, pos_);
        pos_ = buffer_.size();
        complete = false;
        return true;
      }
      buffer_.erase(0, pos_);
      pos_ = 0;
      char chunk[64 * 1024];
      const ssize_t n = ::pread(fd_, chunk, sizeof chunk, offset_);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw std::system_error(errno, std::generic_category());
      if (n == 0) eof_ = true;
      buffer_.append(chunk, static_cast<std::size_t>(n));
      offset_ += n;
    }
  }

 private:
  int fd_;
  std::string buffer_;
  std::size_t pos_ = 0;
  off_t offset_ = 0;
  bool eof_ = false;
};

} // namespace

ResumeState ResumeState::load(int fd, const std::string& path) {
  ResumeState state;
  LineReader in(fd);
  std::string line;
  std::uint64_t line_no = 0;
  std::vector<std::string> fields;
  bool complete = true;
  for (;;) {
    try {
      if (!in.next(line, complete)) break;
    } catch (const std::system_error& e) {
      throw UsageError(fmt::format("cannot read joblog '{}': {}", path, e.code().message()));
    }
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line_no == 1 && line.rfind("Seq\t", 0) == 0) continue;
    if (line.empty() && complete) continue;
    if (!complete) break;  // a torn last line (writer killed): its job was not finished
    fields.clear();
    std::size_t pos = 0;
    while (fields.size() < 8) {
      const auto tab = line.find('\t', pos);
      if (tab == std::string::npos) break;
      fields.push_back(line.substr(pos, tab - pos));
      pos = tab + 1;
    }
    long long seq = 0, send = 0, receive = 0, exitval = 0, signal = 0;
    double start = 0, runtime = 0;
    if (fields.size() < 8 || !parse_int(fields[0], seq) || seq < 1 || !parse_real(fields[2], start) ||
        !parse_real(fields[3], runtime) || !parse_int(fields[4], send) || !parse_int(fields[5], receive) ||
        !parse_int(fields[6], exitval) || !parse_int(fields[7], signal))
      throw UsageError(fmt::format(
          "joblog '{}' line {} is malformed: expected Seq Host Starttime JobRuntime Send Receive Exitval "
          "Signal Command separated by tabs, got '{}'",
          path, line_no, line.size() > 200 ? line.substr(0, 200) + "..." : line));
    const auto index = static_cast<std::size_t>(seq);
    if (index >= state.logged_seq_.size()) {
      state.logged_seq_.resize(index + 1);
      state.succeeded_seq_.resize(index + 1);
    }
    if (!state.logged_seq_[index]) ++state.logged_;
    state.logged_seq_[index] = true;
    state.succeeded_seq_[index] = exitval == 0 && signal == 0;
    if (state.succeeded_seq_[index]) state.failed_commands_.erase(index);
    else state.failed_commands_[index] = line.substr(pos);
  }
  return state;
}

bool ResumeState::skip(std::uint64_t seq, bool resume_failed) const {
  if (seq >= logged_seq_.size() || !logged_seq_[seq]) return false;
  return resume_failed ? static_cast<bool>(succeeded_seq_[seq]) : true;
}

} // namespace procpool::cli
