#include "command.hpp"

#include <array>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include <sys/stat.h>
#include <unistd.h>

namespace procpool::cli {
namespace {

bool is_plain_char(unsigned char c) {
  return std::isalnum(c) || std::strchr("_./:,+@%^=-", c) != nullptr || c >= 0x80;
}

// dash builtins and keywords; running them as programs would differ (cd, exit, export...) or
// could differ (printf, test, kill, pwd). true, false and echo are handled separately.
constexpr std::array<std::string_view, 45> kShellWords = {
    ".", ":", "[", "alias", "bg", "break", "cd", "chdir", "command", "continue", "eval", "exec", "exit",
    "export", "fc", "fg", "getopts", "hash", "jobs", "kill", "local", "printf", "pwd", "read", "readonly",
    "return", "set", "shift", "test", "times", "trap", "type", "ulimit", "umask", "unalias", "unset", "wait",
    "case", "do", "done", "elif", "else", "esac", "fi", "for"};
constexpr std::array<std::string_view, 8> kMoreShellWords = {"if", "in", "then", "until", "while", "!", "{",
                                                              "}"};

bool is_shell_word(const std::string& word) {
  for (const auto w : kShellWords)
    if (word == w) return true;
  for (const auto w : kMoreShellWords)
    if (word == w) return true;
  return false;
}

} // namespace

bool split_plain_words(const std::string& command, std::vector<std::string>& words) {
  words.clear();
  std::string word;
  bool in_word = false;
  bool first_word_plain = true;  // no quotes so far in the first word: '=' there is an assignment
  for (std::size_t i = 0; i < command.size(); ++i) {
    const char c = command[i];
    if (c == ' ' || c == '\t') {
      if (in_word) { words.push_back(std::move(word)); word.clear(); in_word = false; }
      continue;
    }
    if (c == '\'') {
      const auto close = command.find('\'', i + 1);
      if (close == std::string::npos) return false;
      word.append(command, i + 1, close - i - 1);
      i = close;
      in_word = true;
      if (words.empty()) first_word_plain = false;
      continue;
    }
    if (c == '"') {
      const auto close = command.find('"', i + 1);
      if (close == std::string::npos) return false;
      const std::string_view inside(command.data() + i + 1, close - i - 1);
      if (inside.find_first_of("$`\\!") != std::string_view::npos) return false;
      word.append(inside);
      i = close;
      in_word = true;
      if (words.empty()) first_word_plain = false;
      continue;
    }
    if (!is_plain_char(static_cast<unsigned char>(c))) return false;
    if (c == '=' && words.empty() && first_word_plain) return false;  // VAR=value cmd
    word += c;
    in_word = true;
  }
  if (in_word) words.push_back(std::move(word));
  return !words.empty();
}

const std::string* CommandPlanner::resolve(const std::string& program) {
  if (auto it = resolved_.find(program); it != resolved_.end()) return it->second.empty() ? nullptr : &it->second;
  std::string found;
  const char* path_env = std::getenv("PATH");
  std::string_view dirs = path_env != nullptr ? path_env : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    const auto colon = dirs.find(':');
    const std::string_view dir = dirs.substr(0, colon);
    std::string candidate(dir.empty() ? std::string_view(".") : dir);  // an empty PATH entry is "."
    candidate += '/';
    candidate += program;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0) {
      found = std::move(candidate);
      break;
    }
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  auto& slot = resolved_[program];
  slot = std::move(found);
  return slot.empty() ? nullptr : &slot;
}

ExecPlan CommandPlanner::plan(const std::string& command) {
  ExecPlan plan;
  if (shell_always_ || !split_plain_words(command, plan.argv)) return plan;
  const std::string& program = plan.argv.front();
  if (program.empty() || is_shell_word(program)) return plan;
  if (program == "echo") {
    // dash's echo always interprets backslashes and knows only -n; coreutils' echo differs there.
    for (std::size_t i = 1; i < plan.argv.size(); ++i)
      if ((!plan.argv[i].empty() && plan.argv[i].front() == '-') || plan.argv[i].find('\\') != std::string::npos)
        return plan;
  }
  if (program.find('/') != std::string::npos) {
    plan.path = program;
  } else {
    const std::string* resolved = resolve(program);
    if (resolved == nullptr) return plan;  // not found: /bin/sh prints its usual error, exit 127
    plan.path = *resolved;
  }
  plan.direct = true;
  return plan;
}

} // namespace procpool::cli
