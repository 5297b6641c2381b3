#pragma once
// Deciding whether a command line can be exec'd directly instead of through /bin/sh -c.
#include <string>
#include <unordered_map>
#include <vector>

namespace procpool::cli {

/// How to start one command: directly (argv, resolved path) or through /bin/sh -c.
struct ExecPlan {
  bool direct = false;
  std::string path;               ///< resolved program path when direct
  std::vector<std::string> argv;  ///< words when direct
};

/// Plans commands; caches PATH look-ups (a batch runs the same few programs many times).
class CommandPlanner {
 public:
  explicit CommandPlanner(bool shell_always) : shell_always_(shell_always) {}
  /// Direct exec only for lines that /bin/sh would run identically: plain words, simple quotes,
  /// no expansions, redirections, operators, assignments or shell builtins (except true, false,
  /// and echo without options or backslashes).
  ExecPlan plan(const std::string& command);

 private:
  const std::string* resolve(const std::string& program);

  bool shell_always_;
  std::unordered_map<std::string, std::string> resolved_;  // "" = not found: let the shell report it
};

/// Splits `command` into words when it has no shell syntax; false otherwise. Exposed for tests.
bool split_plain_words(const std::string& command, std::vector<std::string>& words);

} // namespace procpool::cli
