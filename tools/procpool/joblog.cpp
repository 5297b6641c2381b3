#include "joblog.hpp"

#include "options.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace procpool::cli {

std::string format_joblog_entry(const JobLogEntry& e) {
  std::string command = e.command;
  // A newline inside the command would split the record; GNU parallel would write it raw.
  for (auto& c : command)
    if (c == '\n') c = ' ';
  return fmt::format("{}\t:\t{:.3f}\t{:10.3f}\t{}\t{}\t{}\t{}\t{}\n", e.seq, e.start_epoch, e.runtime, e.send,
                     e.receive, e.exitval, e.signal, command);
}

namespace {

void write_all(int fd, const std::string& data, const std::string& path) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw UsageError(fmt::format("cannot write joblog '{}': {}", path, std::strerror(errno)));
    done += static_cast<std::size_t>(n);
  }
}

} // namespace

JobLogWriter::JobLogWriter(const std::string& path, bool append) : path_(path) {
  const int flags = O_RDWR | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC);
  fd_ = ::open(path.c_str(), flags, 0644);
  if (fd_ < 0) throw UsageError(fmt::format("cannot open joblog '{}': {}", path, std::strerror(errno)));
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
  if (::lseek(fd_, 0, SEEK_END) == 0) write_all(fd_, joblog_header, path_);
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

ResumeState ResumeState::load(const std::string& path) {
  ResumeState state;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return state;
    throw UsageError(fmt::format("cannot read joblog '{}': {}", path, std::strerror(errno)));
  }
  std::string line;
  std::uint64_t line_no = 0;
  std::vector<std::string> fields;
  while (std::getline(in, line)) {
    ++line_no;
    const bool complete = !in.eof();
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
  }
  if (in.bad()) throw UsageError(fmt::format("cannot read joblog '{}': {}", path, std::strerror(errno)));
  return state;
}

bool ResumeState::skip(std::uint64_t seq, bool resume_failed) const {
  if (seq >= logged_seq_.size() || !logged_seq_[seq]) return false;
  return resume_failed ? static_cast<bool>(succeeded_seq_[seq]) : true;
}

} // namespace procpool::cli
