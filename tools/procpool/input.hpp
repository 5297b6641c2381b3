#pragma once
// Job input: a streamed line reader, batch-file and template job sources, and replacement strings.
#include "options.hpp"
#include "plus_strings.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace procpool::cli {

struct PipeChunk;

/// Reads lines from a file descriptor with a bounded buffer (it grows only to the longest line).
/// Strips "\n", and a "\r" before it when `strip_cr` (batch files; GNU parallel keeps the CR of an
/// argument, so argument sources keep it too). Never blocks on a pipe or terminal: it polls first.
class LineReader {
 public:
  enum class Result { Line, WouldBlock, End };
  /// Opens `path` ("-" is stdin). Throws UsageError when it cannot be read. `delimiter` ends a
  /// record instead of "\n" (-0, -d); then no CR is stripped.
  explicit LineReader(const std::string& path, bool strip_cr = true, std::string delimiter = "\n");
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  Result next(std::string& line);
  /// next(), waiting for a pipe's data instead of returning WouldBlock: Line or End.
  Result next_waiting(std::string& line);
  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  bool fill();  // false when nothing could be read without blocking

  std::string path_;
  int fd_ = -1;
  bool owns_fd_ = false;
  bool may_block_ = false;  // pipe, terminal, socket: poll before reading
  bool eof_ = false;
  bool strip_cr_ = true;
  std::string delimiter_;
  std::vector<char> buffer_;
  std::size_t begin_ = 0, end_ = 0;
};

/// Counts the lines a LineReader would return for a regular file; nullopt for stdin or a pipe.
std::optional<std::uint64_t> count_lines(const std::string& path, bool skip_blank_and_comments,
                                         const std::string& delimiter = "\n", bool skip_empty = false);

/// Perl's /^\s*$/: what -r (--no-run-if-empty) skips.
bool is_whitespace_only(const std::string& value);

/// GNU parallel's reading of argument lines: with -L/-l (`join`) a line ending in white space goes on
/// with the next one (joined as they are); -r (`skip_empty`) drops a value that is only white space,
/// judged once joined.
class ContinuedLines {
 public:
  ContinuedLines(bool skip_empty, bool join) : skip_empty_(skip_empty), join_(join) {}
  /// True when `line` (its held start put before it) is a value now; false when it was dropped or is held.
  bool take(std::string& line);
  /// A held start at the end of the input: a value as it is.
  [[nodiscard]] bool pending() const { return !held_.empty(); }
  std::string flush() { return std::exchange(held_, {}); }

 private:
  bool skip_empty_, join_;
  std::string held_;
};

/// Input that ends the run after the running jobs, exit 255 (-x: GNU parallel's "Command line too long").
struct InputStop : UsageError {
  using UsageError::UsageError;
};

/// A parsed command template with GNU parallel replacement strings.
class CommandTemplate {
 public:
  /// `text` empty means "the arguments are the command" (like `parallel ::: 'echo a'`). As in GNU
  /// parallel, a replacement string in the first word (`{}`, `{} x`, `my_{}`) makes the values part of
  /// the command: nothing is quoted then.
  /// `all_args` is the string for all the arguments, `{}` unless -I renamed it (then `{}` is literal).
  /// `plus`: GNU parallel's --plus strings too ({..} {...} {+/} {+.} {+..} {+...} {/..} {/...}
  /// {slot} {##} {0#} {0%} and the bash-like ones of plus_strings.hpp); then any other {word} is
  /// refused (UsageError) rather than kept as text.
  /// `append_args`: a template without any replacement string gets the arguments appended (not with
  /// --pipe, whose jobs have none).
  explicit CommandTemplate(const std::string& text, const std::string& all_args = "{}", bool plus = false,
                           bool append_args = true);
  /// Expands for one job; arguments are shell-quoted when `quote` (commands) and raw otherwise (tags).
  /// With `context` (-X, -N), a word holding {} is repeated for each argument (`x{}y` gives
  /// `xay xby`), as GNU parallel's context replace; otherwise {} is all the arguments joined by spaces.
  [[nodiscard]] std::string expand(const std::vector<std::string>& args, std::uint64_t seq, unsigned slot,
                                   bool quote, bool context = false) const;
  /// --plus's {choose_k} (arguments not in strictly increasing order) and {uniq} (two arguments the
  /// same, or one empty, as GNU parallel's ::uniq over its 1-based @arg): the job is skipped.
  [[nodiscard]] bool skips(const std::vector<std::string>& args) const;
  [[nodiscard]] bool may_skip() const { return choose_k_ || uniq_; }
  /// --plus's {##} and {0#} need the number of jobs: true when the template has either.
  [[nodiscard]] bool needs_total() const { return needs_total_; }
  /// The number of jobs ({##}, {0#}'s width) and of job slots ({0%}'s width, GNU parallel's -j).
  void set_totals(std::uint64_t jobs, unsigned slots) { total_jobs_ = jobs; slots_ = slots; }

 private:
  enum class Kind { Literal, Args, Seq, Slot, TotalJobs, PaddedSeq, PaddedSlot };
  enum class Modifier {
    None, NoExt, Basename, Dirname, BasenameNoExt,
    NoExt2, NoExt3, DirPlus, Ext, Ext2, Ext3, BasenameNoExt2, BasenameNoExt3  // --plus
  };
  struct Segment {
    Kind kind = Kind::Literal;
    std::string text;      // literal text
    long index = 0;        // 0 = all arguments, N = the Nth, -N = the Nth from the end
    Modifier modifier = Modifier::None;
    bool unquoted = false;  // the arguments are the command: inserted as typed
    bool blank = false;     // a literal of spaces and tabs: it separates context words
    std::shared_ptr<const PlusEdit> edit;  // --plus's bash-like strings: instead of `modifier`
  };
  /// Expands segs[begin, end); `one` >= 0 puts only that argument where {} is.
  void expand_range(std::string& out, const std::vector<Segment>& segs, std::size_t begin, std::size_t end,
                    const std::vector<std::string>& args, long one, std::uint64_t seq, unsigned slot,
                    bool quote) const;
  std::vector<Segment> segments_;
  std::vector<Segment> words_;  // segments_ with the blanks of literals split off (for context replace)
  bool needs_total_ = false;
  bool choose_k_ = false, uniq_ = false;
  std::uint64_t total_jobs_ = 0;
  unsigned slots_ = 1;
};

/// Throws UsageError when `text` holds a GNU parallel Perl expression (`{= ... =}`): procpool has
/// no Perl, and running the expression as literal text would run a different command.
void refuse_perl_expression(const std::string& text, const char* where);

/// The template's words joined by spaces: the command template's text.
std::string join_words(const std::vector<std::string>& words);

/// GNU parallel's dirname (Perl's File::Basename): trailing slashes do not count (`dir/` -> `.`).
std::string gnu_dirname(const std::string& path);

/// Quotes `word` for /bin/sh when it holds anything but plain characters.
std::string shell_quote(const std::string& word);

/// One job as read from the input, before it is given a slot and expanded.
struct JobInput {
  std::uint64_t seq = 0;
  std::vector<std::string> args;  ///< batch mode: the command line itself
  /// -n/-N/-m/-X: how many of `args` each input record gave, in order (--results names them per
  /// record); empty: all of them are one record.
  std::vector<std::size_t> record_sizes;
  std::shared_ptr<const PipeChunk> chunk;  ///< --pipe, --pipepart: the job's stdin
  bool skip = false;  ///< --plus's {choose_k} or {uniq} rules it out: logged with Exitval -2, not run
};

/// Produces jobs in input order, streaming the batch file or the first argument source.
class JobSource {
 public:
  enum class Result { Job, WouldBlock, End };
  virtual ~JobSource() = default;
  virtual Result next(JobInput& job) = 0;
  /// The descriptor to poll after WouldBlock.
  [[nodiscard]] virtual int wait_fd() const = 0;
  /// Total number of jobs when it can be known cheaply in advance (for --bar and --eta).
  [[nodiscard]] virtual std::optional<std::uint64_t> count_total() const = 0;
  /// The command for a job (template expanded and quoted, or the batch line).
  [[nodiscard]] virtual std::string command_for(const JobInput& job, unsigned slot) const = 0;
  /// --header: the names of a record's columns, in the order of its values (may be fewer).
  [[nodiscard]] virtual const std::vector<std::string>& column_names() const;
  /// `text` with --header's {name} strings turned into {N} (as the command's), for --results.
  [[nodiscard]] virtual std::string with_named_columns(const std::string& text) const { return text; }
  /// What runs for `command` (command_for's, which -v, --dry-run and the joblog show): --cat and
  /// --fifo wrap it in their shell code.
  [[nodiscard]] virtual std::string wrap_command(const JobInput& /*job*/, const std::string& command) const {
    return command;
  }
  /// The --tag text: the arguments joined by spaces.
  [[nodiscard]] static std::string tag_for(const JobInput& job);
  /// next(), waiting on wait_fd() instead of returning WouldBlock: Job or End.
  Result next_waiting(JobInput& job);
  /// Whether the commands need the number of jobs (--plus's {##} {0#}): then every job is read first.
  [[nodiscard]] virtual bool needs_total() const { return false; }
  /// The number of jobs, once all are read.
  virtual void set_total(std::uint64_t /*jobs*/) {}
  /// After WouldBlock: when to call next() again even if wait_fd() stays quiet (--block-timeout).
  [[nodiscard]] virtual std::optional<std::chrono::steady_clock::time_point> wake_time() const { return std::nullopt; }
};

std::unique_ptr<JobSource> make_job_source(const Options& options);
/// --retry-failed: the failed jobs of a joblog, with their logged sequence numbers and commands.
std::unique_ptr<JobSource> make_retry_source(const std::map<std::uint64_t, std::string>& failed);

} // namespace procpool::cli
