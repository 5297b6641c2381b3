#pragma once
// Runs a program with arguments, captures stdout and stderr, returns its exit status.
// Used by the example and CLI tests to check real programs' output.
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

namespace testing {

struct ProgramResult {
  int exit_code = -1;        ///< exit status, or -N when killed by signal N
  std::string out;           ///< everything written to stdout
  std::string err;           ///< everything written to stderr
  std::chrono::milliseconds elapsed{0};
};

/// Runs `argv[0]` (a path) with `argv`, optional stdin text; kills it after `timeout`.
ProgramResult run_program(const std::vector<std::string>& argv, const std::string& stdin_text = "",
                          std::chrono::seconds timeout = std::chrono::seconds(60));

/// Path of an example binary from the build tree (PROCPOOL_EXAMPLES_DIR).
std::string example_path(const std::string& name);

/// Number of lines of `text` matching the ECMAScript regex `pattern`.
int count_matching_lines(const std::string& text, const std::string& pattern);

/// Pids of zombie children of `parent` (from /proc).
std::vector<int> zombie_children(int parent);

/// Entries of /dev/shm whose name contains "procpool".
std::vector<std::string> procpool_shm_entries();

/// The whole text of a file (e.g. /proc/self/maps); empty if it cannot be read.
std::string read_text_file(const std::string& path);

} // namespace testing
