#pragma once
// GNU parallel's --joblog format: a header, then one TSV line per finished job:
// Seq Host Starttime JobRuntime Send Receive Exitval Signal Command
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace procpool::cli {

inline constexpr const char* kJoblogHeader =
    "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n";

struct JobLogEntry {
  std::uint64_t seq = 0;
  double start_epoch = 0;  ///< seconds since the epoch
  double runtime = 0;      ///< seconds
  std::uint64_t send = 0;
  std::uint64_t receive = 0;  ///< bytes of stdout
  int exitval = 0;            ///< -1 when killed by --timeout, as GNU parallel writes
  int signal = 0;
  std::string command;
  std::string host;  ///< empty: ":" (this machine), as GNU parallel writes; a broker run's worker host
};

/// One line, newline included, formatted as GNU parallel does (`%.3f`, `%10.3f`).
std::string format_joblog_entry(const JobLogEntry& entry);

/// Appends entries, one write() per line so that a killed procpool leaves only whole lines.
///
/// The joblog must be a regular file, or, without --resume, a pipe or a terminal (`/dev/stdout`,
/// `>(cmd)`), which get the header and the lines as a stream. Anything else (`/dev/zero`, a disk,
/// a directory) is refused before anything is written or truncated: the file is opened first and
/// its type checked on the open descriptor, so no check-then-open race.
class JobLogWriter {
 public:
  /// Truncates and writes the header, or (resume) appends, first cutting off a torn last line.
  JobLogWriter(const std::string& path, bool append);
  ~JobLogWriter();
  JobLogWriter(const JobLogWriter&) = delete;
  JobLogWriter& operator=(const JobLogWriter&) = delete;
  void write(const JobLogEntry& entry);
  /// The open joblog (a regular file when resuming), for ResumeState::load.
  [[nodiscard]] int fd() const { return fd_; }

 private:
  std::string path_;
  int fd_ = -1;
};

/// What a joblog says about each sequence number (the last line for a number wins).
class ResumeState {
 public:
  /// Reads the joblog open on `fd` (a regular file; `path` names it in messages) from its start.
  /// Throws UsageError on a malformed line.
  static ResumeState load(int fd, const std::string& path);
  /// --resume skips every logged job; --resume-failed only the successful ones.
  [[nodiscard]] bool skip(std::uint64_t seq, bool resume_failed) const;
  [[nodiscard]] std::uint64_t logged() const { return logged_; }
  /// The jobs whose last line says they failed, with their commands (--retry-failed).
  [[nodiscard]] const std::map<std::uint64_t, std::string>& failed_commands() const { return failed_commands_; }

 private:
  std::map<std::uint64_t, std::string> failed_commands_;
  std::vector<bool> logged_seq_;
  std::vector<bool> succeeded_seq_;
  std::uint64_t logged_ = 0;
};

} // namespace procpool::cli
