#pragma once
// Helpers for the procpool CLI tests: temp dirs, files, running shell snippets that call
// "$PROCPOOL_CLI", starting procpool in the background to signal it, and reading joblogs.
#include "run_program.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace clitest {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

inline std::string cli() {
  const char* path = std::getenv("PROCPOOL_CLI");
  REQUIRE_MESSAGE(path != nullptr, "PROCPOOL_CLI is not set (run through meson test)");
  return path;
}

/// A fresh directory, removed afterwards. Tests run their shell snippets inside it.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "procpool-cli-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  [[nodiscard]] std::string operator/(const std::string& name) const { return (path / name).string(); }
};

inline void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
  REQUIRE(out.good());
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Runs a /bin/sh snippet in `dir` with P set to the procpool binary.
inline testing::ProgramResult sh(const TempDir& dir, const std::string& script, const std::string& stdin_text = "",
                                 std::chrono::seconds timeout = 60s) {
  const std::string full = "cd '" + dir.path.string() + "' && P='" + cli() + "' && " + script;
  return testing::run_program({"/bin/sh", "-c", full}, stdin_text, timeout);
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

inline std::vector<std::string> split_tabs(const std::string& line, std::size_t max_fields = 9) {
  std::vector<std::string> fields;
  std::size_t pos = 0;
  while (fields.size() + 1 < max_fields) {
    const auto tab = line.find('\t', pos);
    if (tab == std::string::npos) break;
    fields.push_back(line.substr(pos, tab - pos));
    pos = tab + 1;
  }
  fields.push_back(line.substr(pos));
  return fields;
}

/// The data lines of a joblog, each split into its 9 fields.
inline std::vector<std::vector<std::string>> joblog_rows(const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  const auto lines = lines_of(read_file(path));
  for (std::size_t i = 1; i < lines.size(); ++i) rows.push_back(split_tabs(lines[i]));
  return rows;
}

inline std::set<long> joblog_seqs(const std::string& path) {
  std::set<long> seqs;
  for (const auto& row : joblog_rows(path)) seqs.insert(std::stol(row.at(0)));
  return seqs;
}

/// A program (any argv, looked up in $PATH) started in the background with stdout/stderr to
/// DIR/NAME and DIR/NAME.err, so a test can signal it; killed by pid (and by PDEATHSIG) at the end.
struct BackgroundProgram {
  pid_t pid = -1;
  BackgroundProgram(const TempDir& dir, const std::vector<std::string>& args, const std::string& out_name) {
    const std::string out_path = dir / out_name;
    const std::string err_path = dir / (out_name + ".err");
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::chdir(dir.path.c_str()) != 0) ::_exit(126);
      const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int null = ::open("/dev/null", O_RDONLY);
      ::dup2(null, 0);
      ::dup2(out, 1);
      ::dup2(err, 2);
      for (const int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) ::signal(sig, SIG_DFL);
      std::vector<std::string> copy = args;
      std::vector<char*> argv;
      for (auto& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
  }
  BackgroundProgram(const BackgroundProgram&) = delete;
  BackgroundProgram& operator=(const BackgroundProgram&) = delete;
  /// Waits for exit; returns the exit status, or -signal.
  int wait(std::chrono::seconds limit = 30s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    int status = 0;
    while (::waitpid(pid, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        pid = -1;
        FAIL("background process did not exit in time");
      }
      std::this_thread::sleep_for(20ms);
    }
    pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }
  ~BackgroundProgram() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

/// procpool started in the background (BackgroundProgram with the command prepended).
struct Background : BackgroundProgram {
  Background(const TempDir& dir, const std::vector<std::string>& args, const std::string& out_name = "bg.out")
      : BackgroundProgram(dir, with_cli(args), out_name) {}

private:
  static std::vector<std::string> with_cli(const std::vector<std::string>& args) {
    std::vector<std::string> full = {cli()};
    full.insert(full.end(), args.begin(), args.end());
    return full;
  }
};

/// Waits until `predicate` holds, up to `limit`; returns whether it did.
template <class Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds limit = 10000ms) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return predicate();
}

/// True while `pid` exists and is not a zombie.
inline bool process_alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string content;
  if (!std::getline(stat, content)) return false;
  const auto close_paren = content.rfind(')');
  return close_paren != std::string::npos && content.size() > close_paren + 2 && content[close_paren + 2] != 'Z';
}

} // namespace clitest
