#include "output.hpp"

#include "os/fd.hpp"

#include <algorithm>
#include <cerrno>
#include <system_error>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

namespace procpool::cli {
namespace {

// Output held in memory per stream before it moves to a temp file: a few jobs of ordinary output
// stay in RAM, a 100 MiB job does not.
constexpr std::size_t kSpillThreshold = 256 * 1024;
// A --line-buffer line longer than this waits in a temp file rather than in memory; it is still
// written whole, when its newline (or the job's end) comes.
constexpr std::size_t kMaxPartialLine = 1024 * 1024;

int open_temp_file() {
  const char* dir = std::getenv("TMPDIR");
  const std::string base = dir != nullptr && *dir != '\0' ? dir : "/tmp";
  int fd = ::open(base.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
  std::string name = base + "/procpool-out-XXXXXX";  // file systems without O_TMPFILE
  fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "cannot create a temp file in " + base);
  ::unlink(name.c_str());
  return fd;
}

void pwrite_all(int fd, std::string_view data, std::uint64_t offset) {
  if (const int err = os::pwrite_all(fd, data, offset); err != 0)
    throw std::system_error(err, std::generic_category(), "cannot write a temp file");
}

} // namespace

OutputBuffer::~OutputBuffer() {
  if (file_ >= 0) ::close(file_);
}

void OutputBuffer::append(std::string_view data) {
  if (file_ < 0 && memory_.size() + data.size() <= kSpillThreshold) {
    memory_.append(data);
    return;
  }
  if (file_ < 0) {
    file_ = open_temp_file();
    pwrite_all(file_, memory_, 0);
    file_size_ = memory_.size();
    std::string().swap(memory_);
  }
  pwrite_all(file_, data, file_size_);
  file_size_ += data.size();
}

void OutputBuffer::for_each_chunk(const std::function<void(std::string_view)>& sink) {
  if (!memory_.empty()) sink(memory_);
  if (file_ < 0) return;
  std::string chunk(std::min<std::uint64_t>(file_size_, 256 * 1024), '\0');
  std::uint64_t offset = 0;
  while (offset < file_size_) {
    const ssize_t n = ::pread(file_, chunk.data(), chunk.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    sink(std::string_view(chunk.data(), static_cast<std::size_t>(n)));
    offset += static_cast<std::uint64_t>(n);
  }
}

void OutputBuffer::clear() {
  std::string().swap(memory_);
  if (file_ >= 0) ::close(file_);
  file_ = -1;
  file_size_ = 0;
}

void StdWriter::write_raw(int fd, std::string_view data) {
  // An inherited non-blocking stdout is waited on until it drains; EPIPE or another hard error
  // means the reader is gone.
  if (!data.empty() && !broken_ && os::write_all(fd, data, os::WhenFull::Wait) != 0) broken_ = true;
}

void StdWriter::write(int fd, std::string_view data, const std::string& prefix, bool& at_line_start) {
  if (data.empty() || broken_) return;
  if (before_write_) before_write_();
  if (prefix.empty()) {
    write_raw(fd, data);
    at_line_start = data.back() == '\n';
    return;
  }
  std::string tagged;
  tagged.reserve(data.size() + prefix.size() * 4);
  for (std::size_t pos = 0; pos < data.size();) {
    if (at_line_start) tagged += prefix;
    const auto nl = data.find('\n', pos);
    const std::size_t end = nl == std::string_view::npos ? data.size() : nl + 1;
    tagged.append(data.substr(pos, end - pos));
    at_line_start = nl != std::string_view::npos;
    pos = end;
  }
  write_raw(fd, tagged);
}

OutputOrder::OutputOrder(OutputMode mode, bool keep_order, StdWriter& writer)
    : mode_(mode), keep_order_(keep_order), writer_(writer) {}

JobOutput* OutputOrder::open(std::string prefix) {
  jobs_.push_back(std::make_unique<JobOutput>());
  jobs_.back()->prefix = std::move(prefix);
  return jobs_.back().get();
}

bool OutputOrder::may_stream(const JobOutput& job) const {
  return mode_ == OutputMode::LineBuffer && (!keep_order_ || jobs_.front().get() == &job);
}

void OutputOrder::data(JobOutput& job, int fd, std::string_view bytes) {
  const bool is_out = fd == STDOUT_FILENO;
  if (!may_stream(job)) {
    (is_out ? job.out : job.err).append(bytes);
    return;
  }
  std::string& partial = is_out ? job.out_partial : job.err_partial;
  OutputBuffer& long_line = is_out ? job.out_long : job.err_long;
  bool& line_start = is_out ? job.out_line_start : job.err_line_start;
  const auto nl = bytes.rfind('\n');
  if (nl == std::string_view::npos) {  // no line ends here: hold the bytes
    if (long_line.empty() && partial.size() + bytes.size() <= kMaxPartialLine) {
      partial.append(bytes);
    } else {
      long_line.append(partial);
      partial.clear();
      long_line.append(bytes);
    }
    return;
  }
  // Complete lines: the held start, then up to the last newline, with no other job's write between.
  write_held(fd, long_line, partial, job.prefix, line_start);
  writer_.write(fd, bytes.substr(0, nl + 1), job.prefix, line_start);
  partial.assign(bytes.substr(nl + 1));
  if (partial.size() > kMaxPartialLine) {
    long_line.append(partial);
    partial.clear();
  }
}

void OutputOrder::write_held(int fd, OutputBuffer& long_line, std::string& partial, const std::string& prefix,
                             bool& line_start) {
  long_line.for_each_chunk([&](std::string_view c) { writer_.write(fd, c, prefix, line_start); });
  long_line.clear();
  writer_.write(fd, partial, prefix, line_start);
  partial.clear();
}

void OutputOrder::reset(JobOutput& job) {
  job.out.clear();
  job.err.clear();
}

void OutputOrder::write_job(JobOutput& job) {
  if (job.discarded) return;
  job.out.for_each_chunk([&](std::string_view c) { writer_.write(STDOUT_FILENO, c, job.prefix, job.out_line_start); });
  write_held(STDOUT_FILENO, job.out_long, job.out_partial, job.prefix, job.out_line_start);
  job.err.for_each_chunk([&](std::string_view c) { writer_.write(STDERR_FILENO, c, job.prefix, job.err_line_start); });
  write_held(STDERR_FILENO, job.err_long, job.err_partial, job.prefix, job.err_line_start);
  job.out.clear();
  job.err.clear();
}

void OutputOrder::drain_head() {
  while (!jobs_.empty() && jobs_.front()->finished) {
    write_job(*jobs_.front());
    jobs_.pop_front();
  }
  // The new oldest job may now stream: first what it printed while it had to wait.
  if (!jobs_.empty() && mode_ == OutputMode::LineBuffer) {
    JobOutput& head = *jobs_.front();
    if (!head.discarded) {
      head.out.for_each_chunk([&](std::string_view c) { data(head, STDOUT_FILENO, c); });
      head.err.for_each_chunk([&](std::string_view c) { data(head, STDERR_FILENO, c); });
    }
    head.out.clear();
    head.err.clear();
  }
}

void OutputOrder::finish(JobOutput& job) {
  job.finished = true;
  if (keep_order_) {
    drain_head();
    return;
  }
  write_job(job);
  const auto it = std::find_if(jobs_.begin(), jobs_.end(), [&](const auto& p) { return p.get() == &job; });
  if (it != jobs_.end()) jobs_.erase(it);
}

void OutputOrder::discard(JobOutput& job) {
  job.discarded = true;
  finish(job);
}

void OutputOrder::flush_all() {
  for (auto& job : jobs_)
    if (job->finished) write_job(*job);
  jobs_.clear();
}

} // namespace procpool::cli
