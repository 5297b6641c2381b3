#pragma once
// --results: GNU parallel's layouts (GnuResults), and procpool's DIR/SEQ/{cmd,stdout,stderr}
// (ResultsDir, --results-layout seq and --broker), created without ever following a symbolic link
// that someone planted under the directory.
#include "input.hpp"
#include "joblog.hpp"

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace procpool::cli {

/// A result file or directory could not be created or written: the message names the path and why.
struct ResultsError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The --results directory, held open: everything under it is reached with *at() calls relative to
/// this descriptor, each component with O_NOFOLLOW, so a symlink (or a directory renamed into a
/// symlink) at DIR/SEQ or DIR/SEQ/stdout is refused, never written through. DIR itself is the user's
/// own path and is resolved normally (it may be a symlink to a bigger disk).
class ResultsDir {
 public:
  /// Creates DIR (and its parents) if needed. Throws UsageError if it cannot.
  explicit ResultsDir(const std::string& path);
  ~ResultsDir();
  ResultsDir(const ResultsDir&) = delete;
  ResultsDir& operator=(const ResultsDir&) = delete;

  struct JobFiles {
    int out = -1, err = -1;  ///< DIR/SEQ/stdout and DIR/SEQ/stderr, open for writing, empty, close-on-exec
  };
  /// Creates DIR/SEQ (an existing directory is reused), writes DIR/SEQ/cmd, and opens stdout and stderr.
  /// Existing regular files are overwritten, as GNU parallel does; a symlink, a file with other hard
  /// links, or anything not a regular file is refused. Throws ResultsError; nothing stays open then.
  [[nodiscard]] JobFiles create(std::uint64_t seq, const std::string& command) const;
  /// DIR/SEQ/name, for messages.
  [[nodiscard]] std::string file_path(std::uint64_t seq, const char* name) const;

 private:
  std::string path_;
  int fd_ = -1;
};

/// GNU parallel's --results NAME, as GNU parallel 20221122 writes it:
///   NAME                 NAME/1/VALUE1/2/VALUE2/{seq,stdout,stderr} (header names instead of 1, 2 with
///                        --header, sorted as GNU does; values escaped as GNU's args_as_dirname)
///   NAME with {} etc.    the expansion is the stdout file, with .err and .seq beside it; one that ends
///                        in / is a directory of seq, stdout, stderr
///   NAME.csv/.tsv/.json  one row per finished job (-.csv, -.tsv, -.json: on stdout)
/// Unlike GNU parallel, nothing is written outside the directory a name starts in (NAME itself, or a
/// template's text before its first replacement string): an argument `..` that would climb out, or
/// a template that expands to an absolute path, is refused, and so is a symbolic link on the way.
class GnuResults {
 public:
  /// `named` is `name` with --header's {name} strings as {N}; `all_args` and `plus` as the command
  /// template's. Creates NAME (or a template's directory). Throws UsageError if it cannot.
  GnuResults(const std::string& name, const std::string& named, const std::string& all_args, bool plus);
  ~GnuResults();
  GnuResults(const GnuResults&) = delete;
  GnuResults& operator=(const GnuResults&) = delete;

  /// A CSV, TSV or JSON table rather than files per job.
  [[nodiscard]] bool table() const { return table_ != Table::None; }

  struct JobFiles {
    int out = -1, err = -1;        ///< open for writing, empty, close-on-exec
    std::string out_path, err_path;  ///< as GNU parallel names them (for messages and --line-buffer)
  };
  /// Files: makes the job's directories, writes its seq file, opens stdout and stderr (existing
  /// regular files are overwritten, anything else refused, as ResultsDir). Throws ResultsError.
  [[nodiscard]] JobFiles create(const JobInput& job, const std::vector<std::string>& names, unsigned slot) const;
  /// --resume without --joblog (GNU parallel's): the job's stdout file (a template's file) exists.
  /// Always false for a table.
  [[nodiscard]] bool already_done(const JobInput& job, const std::vector<std::string>& names) const;
  /// Table: the finished job's row (the header row first), with its values and whole output.
  /// Throws ResultsError.
  void write_row(const JobLogEntry& entry, const std::vector<std::string>& values,
                 const std::vector<std::string>& names, std::string_view out, std::string_view err);

 private:
  enum class Table { None, Csv, Tsv, Json };
  /// Where a job's files go: `components` beneath the root, then a directory's seq/stdout/stderr or
  /// the file `base` and its .err and .seq; `expanded` and `shown_root` name them as GNU parallel does.
  struct Target {
    std::vector<std::string> components;
    bool directory = true;
    std::string base, expanded, shown_root;
  };
  [[nodiscard]] Target target(const JobInput& job, const std::vector<std::string>& names, unsigned slot) const;
  std::string name_;
  Table table_ = Table::None;
  std::optional<CommandTemplate> template_;  ///< a name with replacement strings
  std::string root_;  ///< NAME, or a template's directory ("" = the current one)
  int root_fd_ = -1;  ///< files: root_; table: the table's descriptor
  bool owns_fd_ = true;
  bool header_written_ = false;
};

/// GNU parallel's args_as_dirname: per record, each column's name (--header's, else its number)
/// then its value with a backslash, TAB, NUL and / written as \\ \t \0 \_, joined by /; a value
/// longer than a file name may be (NAME_MAX) is cut.
std::string args_as_dirname(const std::vector<std::string>& args, const std::vector<std::size_t>& record_sizes,
                            const std::vector<std::string>& names);
/// `path` as components beneath its start, "" and "." dropped and ".." resolved; nullopt when a ".."
/// climbs above the start.
std::optional<std::vector<std::string>> components_beneath(std::string_view path);
/// One CSV field as GNU parallel quotes it: in quotes (inner ones doubled) when it holds a quote,
/// white space, the separator or a NUL.
std::string csv_field(std::string_view value, char separator);
/// A JSON string's content as GNU parallel escapes it (backslash, quote, control characters as \u00XX).
std::string json_escape(std::string_view value);

} // namespace procpool::cli
