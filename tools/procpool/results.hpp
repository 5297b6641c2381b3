#pragma once
// --results DIR: each job's DIR/SEQ/cmd, DIR/SEQ/stdout and DIR/SEQ/stderr, created without ever
// following a symbolic link that someone planted under DIR.
#include <cstdint>
#include <stdexcept>
#include <string>

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

} // namespace procpool::cli
