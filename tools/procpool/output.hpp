#pragma once
// Job output: buffers that spill to an unlinked temp file, a writer that prefixes lines (--tag),
// and the ordering policy (--group, --line-buffer, --keep-order).
#include "options.hpp"

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace procpool::cli {

/// Bytes kept in memory up to a threshold, then in an unlinked temp file, so a job printing
/// 100 MiB costs disk, not RAM.
class OutputBuffer {
 public:
  OutputBuffer() = default;
  ~OutputBuffer();
  OutputBuffer(const OutputBuffer&) = delete;
  OutputBuffer& operator=(const OutputBuffer&) = delete;

  void append(std::string_view data);
  /// Calls `sink` with the content in order, in chunks.
  void for_each_chunk(const std::function<void(std::string_view)>& sink);
  void clear();
  [[nodiscard]] bool empty() const { return memory_.empty() && file_size_ == 0; }

 private:
  std::string memory_;
  int file_ = -1;
  std::uint64_t file_size_ = 0;
};

/// Writes to procpool's stdout/stderr: whole writes, the --tag prefix at each line start, and a
/// hook that erases the progress line first. Remembers a closed stdout (EPIPE).
class StdWriter {
 public:
  explicit StdWriter(std::function<void()> before_write) : before_write_(std::move(before_write)) {}
  /// Writes `data` to `fd`, putting `prefix` at each line start; `at_line_start` carries over.
  /// A non-empty `colour` (--color) goes before the prefix and each line ends with the reset sequence,
  /// as GNU parallel writes them: a CR also resets and starts the colour and prefix again.
  void write(int fd, std::string_view data, const std::string& prefix, bool& at_line_start,
             std::string_view colour = {});
  /// --color: ends a last line that had no newline (reset, newline), as GNU parallel's grouped output.
  void end_colour_line(int fd, std::string_view colour, bool& at_line_start);
  [[nodiscard]] bool broken() const { return broken_; }

 private:
  void write_raw(int fd, std::string_view data);
  std::function<void()> before_write_;
  bool broken_ = false;
};

/// --color: GNU parallel's colours for job `seq` (background and foreground, then clear to end of line).
std::string colour_for_seq(std::uint64_t seq);
/// --color-failed: GNU parallel's white on red for a failed job's lines.
std::string failed_colour();

/// The output of one job (all its tries), owned by OutputOrder.
struct JobOutput {
  OutputBuffer out, err;
  std::string prefix;              ///< "TAG\t" or empty
  std::string colour;              ///< --color: colour_for_seq, or empty
  bool whole_lines = false;        ///< --color-failed: grouped, a last line without a newline gets one
  bool out_line_start = true, err_line_start = true;
  std::string out_partial, err_partial;  ///< --line-buffer: the unfinished last line
  OutputBuffer out_long, err_long;       ///< --line-buffer: the start of an unfinished line over 1 MiB
  bool finished = false;           ///< its last try ended; nothing more will come
  bool discarded = false;          ///< killed by Ctrl-C or --halt now: print nothing
};

/// Decides when a job's output reaches stdout/stderr.
///   group:        whole job (stdout, then stderr) when it ends
///   line-buffer:  as it arrives (StdWriter writes whole chunks; the job's partial last line waits)
///   keep-order:   in input order; only the oldest unfinished job may write while it runs
class OutputOrder {
 public:
  OutputOrder(OutputMode mode, bool keep_order, StdWriter& writer);
  JobOutput* open(std::string prefix, std::string colour = {});
  /// Data read from the job's stdout (fd 1) or stderr (fd 2).
  void data(JobOutput& job, int fd, std::string_view bytes);
  /// A failed try will be retried: forget what it printed (not yet written).
  void reset(JobOutput& job);
  void finish(JobOutput& job);
  void discard(JobOutput& job);
  /// Writes every finished job still waiting (at exit, after an interruption).
  void flush_all();

 private:
  bool may_stream(const JobOutput& job) const;
  /// --line-buffer: writes the complete lines of `bytes` now and holds the unfinished last one.
  void stream(JobOutput& job, int fd, std::string_view bytes);
  /// Writes a --line-buffer line's held start (temp file, then memory) and forgets it.
  void write_held(int fd, OutputBuffer& long_line, std::string& partial, const std::string& prefix, bool& line_start,
                  std::string_view colour);
  void write_job(JobOutput& job);
  void drain_head();

  OutputMode mode_;
  bool keep_order_;
  StdWriter& writer_;
  std::deque<std::unique_ptr<JobOutput>> jobs_;  // open jobs, in start order
};

} // namespace procpool::cli
