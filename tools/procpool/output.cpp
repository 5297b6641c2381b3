#include "output.hpp"

#include "os/fd.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <utility>
#include <vector>

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

// GNU parallel's fallback sequences when `tput el` / `tput sgr0` print nothing (no terminal).
constexpr std::string_view kClearToEol = "\033[K";
constexpr std::string_view kResetColour = "\033[m";

} // namespace

std::string colour_for_seq(std::uint64_t seq) {
  // GNU parallel's readable pairs (background, then black or white text), each code three digits so
  // that TABs line up, reordered so that neighbouring jobs differ (its %23 and %7 sort, stable).
  static const std::vector<std::string> colours = [] {
    std::vector<std::pair<int, int>> pairs;
    auto add = [&](std::initializer_list<std::pair<int, int>> ranges, int fg) {
      for (const auto& [from, to] : ranges)
        for (int c = from; c <= to; ++c) pairs.emplace_back(c, fg);
    };
    add({{6, 7}, {9, 11}, {13, 15}, {40, 51}, {75, 87}, {113, 123}, {147, 159}, {171, 182}, {185, 231}, {249, 254}}, 0);
    add({{1, 9}, {12, 13}, {16, 45}, {52, 81}, {88, 114}, {124, 149}, {160, 178}, {180, 180}, {182, 184}, {196, 214},
         {232, 250}},
        231);
    std::vector<std::size_t> order(pairs.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [](std::size_t a, std::size_t b) {
      if (a % 23 != b % 23) return a % 23 < b % 23;
      return a % 7 > b % 7;
    });
    std::vector<std::string> out;
    for (const std::size_t i : order)
      out.push_back(fmt::format("\033[48;5;{:03};38;5;{:03}m", pairs[i].first, pairs[i].second));
    return out;
  }();
  return colours[seq % colours.size()] + std::string(kClearToEol);
}

std::string failed_colour() { return "\033[48;5;196;38;5;231m" + std::string(kClearToEol); }

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

void StdWriter::write(int fd, std::string_view data, const std::string& prefix, bool& at_line_start,
                      std::string_view colour) {
  if (data.empty() || broken_) return;
  if (before_write_) before_write_();
  if (!colour.empty()) {
    std::string coloured;
    coloured.reserve(data.size() + (colour.size() + prefix.size() + kResetColour.size()) * 4);
    for (std::size_t pos = 0; pos < data.size();) {
      if (at_line_start) coloured.append(colour).append(prefix);
      const auto end = data.find_first_of("\n\r", pos);
      coloured.append(data.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos));
      if (end == std::string_view::npos) {
        at_line_start = false;
        break;
      }
      coloured.append(kResetColour).push_back(data[end]);
      if (data[end] == '\r') coloured.append(colour).append(prefix);
      at_line_start = data[end] == '\n';
      pos = end + 1;
    }
    write_raw(fd, coloured);
    return;
  }
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

void StdWriter::end_colour_line(int fd, std::string_view colour, bool& at_line_start) {
  if (colour.empty() || at_line_start || broken_) return;
  if (before_write_) before_write_();
  write_raw(fd, std::string(kResetColour) + "\n");
  at_line_start = true;
}

OutputOrder::OutputOrder(OutputMode mode, bool keep_order, StdWriter& writer)
    : mode_(mode), keep_order_(keep_order), writer_(writer) {}

JobOutput* OutputOrder::open(std::string prefix, std::string colour) {
  jobs_.push_back(std::make_unique<JobOutput>());
  jobs_.back()->prefix = std::move(prefix);
  jobs_.back()->colour = std::move(colour);
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
  stream(job, fd, bytes);
}

void OutputOrder::stream(JobOutput& job, int fd, std::string_view bytes) {
  const bool is_out = fd == STDOUT_FILENO;
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
  write_held(fd, long_line, partial, job.prefix, line_start, job.colour);
  writer_.write(fd, bytes.substr(0, nl + 1), job.prefix, line_start, job.colour);
  partial.assign(bytes.substr(nl + 1));
  if (partial.size() > kMaxPartialLine) {
    long_line.append(partial);
    partial.clear();
  }
}

void OutputOrder::write_held(int fd, OutputBuffer& long_line, std::string& partial, const std::string& prefix,
                             bool& line_start, std::string_view colour) {
  long_line.for_each_chunk([&](std::string_view c) { writer_.write(fd, c, prefix, line_start, colour); });
  long_line.clear();
  writer_.write(fd, partial, prefix, line_start, colour);
  partial.clear();
}

void OutputOrder::reset(JobOutput& job) {
  job.out.clear();
  job.err.clear();
}

void OutputOrder::write_job(JobOutput& job) {
  if (job.discarded) return;
  // Grouped output ends a coloured last line; --line-buffer's unfinished last line (also of a job that
  // waited for -k) is written with the plain prefix and no colour, as GNU parallel does.
  for (const int fd : {STDOUT_FILENO, STDERR_FILENO}) {
    const bool is_out = fd == STDOUT_FILENO;
    bool& line_start = is_out ? job.out_line_start : job.err_line_start;
    if (mode_ == OutputMode::LineBuffer) {
      (is_out ? job.out : job.err).for_each_chunk([&](std::string_view c) { stream(job, fd, c); });
    } else {
      (is_out ? job.out : job.err).for_each_chunk([&](std::string_view c) {
        writer_.write(fd, c, job.prefix, line_start, job.colour);
      });
      writer_.end_colour_line(fd, job.colour, line_start);
      if (job.whole_lines && !line_start) writer_.write(fd, "\n", {}, line_start);
    }
    write_held(fd, is_out ? job.out_long : job.err_long, is_out ? job.out_partial : job.err_partial, job.prefix,
               line_start, {});
  }
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
