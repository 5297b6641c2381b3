#include "semaphore.hpp"

#include "options.hpp"

#include "os/cpu.hpp"
#include "spawn.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <system_error>
#include <thread>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace procpool::cli {
namespace {

using Clock = std::chrono::steady_clock;

// Waiting for a slot polls: 2 ms at first, growing to 100 ms (a slot is freed by a holder's exit,
// which no descriptor signals to the waiters of other slots).
constexpr auto kFirstPoll = std::chrono::milliseconds(2);
constexpr auto kLongestPoll = std::chrono::milliseconds(100);

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

void make_private_dir(const std::string& path) {
  std::error_code error;
  std::filesystem::create_directories(path, error);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw UsageError(fmt::format("semaphore directory '{}' cannot be made: {}", path,
                                 error ? error.message() : "not a directory"));
  if (st.st_uid != ::getuid()) throw UsageError(fmt::format("semaphore directory '{}' belongs to another user", path));
  (void)::chmod(path.c_str(), 0700);
}

int open_lock_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) throw_errno(fmt::format("open '{}'", path));
  return fd;
}

int lock(int fd, int operation) {
  int r = 0;
  do r = ::flock(fd, operation);
  while (r != 0 && errno == EINTR);
  return r;
}

/// The slot files of `dir`, by number.
std::vector<std::string> slot_files(const std::string& dir) {
  std::vector<std::pair<unsigned long, std::string>> found;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename();
    if (name.rfind("slot.", 0) != 0 || name.size() == 5 || name.find_first_not_of("0123456789", 5) != std::string::npos)
      continue;
    found.emplace_back(std::stoul(name.substr(5)), entry.path());
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> paths;
  for (auto& [number, path] : found) paths.push_back(std::move(path));
  return paths;
}

std::string default_id() {
  // GNU sem's default: what `tty` prints, "not a tty" without a terminal.
  const char* name = ::ttyname(STDIN_FILENO);
  return name != nullptr ? name : "not a tty";
}

double parse_semaphore_timeout(const std::string& text) {
  if (!text.empty() && text.front() == '-') return -parse_duration_seconds(text.substr(1), "--semaphore-timeout");
  return parse_duration_seconds(text, "--semaphore-timeout");
}

} // namespace

bool is_semaphore_run(const std::vector<std::string>& args) {
  // Only sem's own options may come before: `run --dry-run --fg ...` is a run, which refuses --fg.
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    const std::string name = arg.substr(0, arg.find('='));
    for (const char* sem : {"--semaphore", "--fg", "--bg", "--wait", "--id", "--semaphore-name", "--semaphorename",
                            "--semaphore-timeout", "--semaphoretimeout", "--st"})
      if (name == sem) return true;
    if (arg == "-j" || arg == "-P" || arg == "--jobs" || arg == "--max-procs") ++i;  // and its value
    else if (!(arg.rfind("-j", 0) == 0 || arg.rfind("-P", 0) == 0 || name == "--jobs" || name == "--max-procs")) return false;
  }
  return false;
}

std::optional<SemOptions> parse_sem_options(const std::vector<std::string>& args) {
  CLI::App app{"A counting semaphore shared by every invocation with the same --id (GNU parallel's sem): "
               "run COMMAND once fewer than N commands of the id are running.",
               "procpool sem"};
  app.prefix_command();
  app.set_help_flag("-h,--help", "Print this help and exit");
  app.footer("Usage: procpool sem [-j N] [--id NAME] [--fg] [--st SECS] COMMAND...\n"
             "       procpool sem --wait [--id NAME]\n"
             "Slots are lock files in $PROCPOOL_SEMAPHORE_DIR, $XDG_RUNTIME_DIR/procpool-semaphores or\n"
             "~/.procpool/semaphores: a holder that dies (even by SIGKILL) frees its slot.");
  SemOptions sem;
  std::string jobs, timeout;
  bool bg = false, semaphore = false;
  app.add_option("-j,--jobs,-P,--max-procs", jobs, "Run up to N commands of this id at once (default 1: a mutex); "
                 "N, N%, +N, -N as procpool run -j")->type_name("N");
  app.add_option("--id,--semaphore-name,--semaphorename", sem.id,
                 "The semaphore's name (default: the terminal's name, as GNU sem)")->type_name("NAME");
  app.add_flag("--fg", sem.fg, "Run COMMAND in the foreground and exit with its status");
  app.add_flag("--bg", bg, "Start COMMAND in the background once a slot is free, and exit 0 (the default)");
  app.add_flag("--wait", sem.wait, "Wait until every command of this id has ended");
  app.add_option("--semaphore-timeout,--semaphoretimeout,--st", timeout,
                 "SECS > 0: take a slot anyway after waiting SECS; SECS < 0: give up (exit 1) after -SECS")
      ->type_name("SECS");
  app.add_flag("--semaphore", semaphore, "Accepted: procpool run --semaphore is procpool sem");
  try {
    app.parse(std::vector<std::string>(args.rbegin(), args.rend()));
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return std::nullopt;
  } catch (const CLI::ParseError& e) {
    throw UsageError(e.what());
  }
  sem.command = app.remaining();
  if (!sem.command.empty() && sem.command.front() == "--") sem.command.erase(sem.command.begin());
  if (!sem.command.empty() && sem.command.front().size() > 1 && sem.command.front().front() == '-')
    throw UsageError(fmt::format("sem: '{}' is not an option of procpool sem (semaphore mode takes -j, --id, --fg, "
                                 "--bg, --wait and --st; see procpool sem --help)",
                                 sem.command.front()));
  if (sem.fg && bg) throw UsageError("sem: --fg and --bg exclude each other");
  if (sem.wait && !sem.command.empty()) throw UsageError("sem: --wait takes no command");
  if (!sem.wait && sem.command.empty()) throw UsageError("sem: no command (procpool sem [OPTIONS] COMMAND...)");
  if (app.count("--jobs") > 0) sem.jobs = parse_jobs(jobs, static_cast<unsigned>(os::cpu_count()));
  if (app.count("--semaphore-timeout") > 0) sem.timeout = parse_semaphore_timeout(timeout);
  if (app.count("--id") == 0) sem.id = default_id();
  if (sem.id.empty()) throw UsageError("sem: --id: empty value");
  return sem;
}

std::string semaphore_dir(const std::string& id) {
  std::string base;
  if (const char* dir = std::getenv("PROCPOOL_SEMAPHORE_DIR"); dir != nullptr && *dir != '\0') base = dir;
  else if (const char* run = std::getenv("XDG_RUNTIME_DIR"); run != nullptr && *run != '\0')
    base = std::string(run) + "/procpool-semaphores";
  else if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0')
    base = std::string(home) + "/.procpool/semaphores";
  else
    throw UsageError("sem: no place for the semaphores: set PROCPOOL_SEMAPHORE_DIR, XDG_RUNTIME_DIR or HOME");
  std::string name = "id-";
  for (const char c : id) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_') name += c;
    else name += fmt::format("{:02x}", u);  // GNU sem's escaping: the name stays one path component
  }
  return base + "/" + name;
}

SemaphoreSlots::SemaphoreSlots(std::string dir) : dir_(std::move(dir)) { make_private_dir(dir_); }

os::UniqueFd SemaphoreSlots::try_acquire(unsigned limit) {
  // Counted under the directory's lock: every acquirer counts and takes under it, so the count
  // cannot change between them (a release only frees a slot, which at worst makes one wait a round).
  const os::UniqueFd guard(open_lock_file(dir_ + "/lock"));
  if (lock(guard.get(), LOCK_EX) != 0) throw_errno("flock");
  unsigned held = 0;
  os::UniqueFd mine;
  const auto files = slot_files(dir_);
  for (const auto& path : files) {
    os::UniqueFd fd(open_lock_file(path));
    if (lock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK) throw_errno("flock");
      ++held;
    } else if (!mine) {
      mine = std::move(fd);  // free: ours if there is room
    }
  }
  if (held >= limit) return {};
  if (!mine) {
    mine.reset(open_lock_file(fmt::format("{}/slot.{}", dir_, files.size())));
    if (lock(mine.get(), LOCK_EX | LOCK_NB) != 0) throw_errno("flock");
  }
  return mine;
}

void SemaphoreSlots::wait_all_released() {
  for (const auto& path : slot_files(dir_)) {
    const os::UniqueFd fd(open_lock_file(path));
    if (lock(fd.get(), LOCK_SH) != 0) throw_errno("flock");  // waits for the holder, then lets go at once
  }
}

int run_semaphore(const SemOptions& options) {
  SemaphoreSlots slots(semaphore_dir(options.id));
  if (options.wait) {
    slots.wait_all_released();
    return 0;
  }
  const auto start = Clock::now();
  auto pause = std::chrono::duration_cast<std::chrono::microseconds>(kFirstPoll);
  os::UniqueFd slot;
  for (;;) {
    slot = slots.try_acquire(options.jobs);
    if (slot) break;
    const double waited = std::chrono::duration<double>(Clock::now() - start).count();
    if (options.timeout > 0 && waited > options.timeout) {
      std::cerr << "procpool: warning: Semaphore timed out. Stealing the semaphore.\n";
      break;
    }
    if (options.timeout < 0 && waited > -options.timeout) {
      std::cerr << "procpool: warning: Semaphore timed out. Exiting.\n";
      return 1;
    }
    std::this_thread::sleep_for(pause);
    pause = std::min<std::chrono::microseconds>(pause * 3 / 2, kLongestPoll);
  }
  std::string command;
  for (const auto& word : options.command) command += (command.empty() ? "" : " ") + word;
  if (options.fg) return run_shell_command(command);
  // --bg: the caller goes on at once; a child keeps the slot (the forked descriptor shares the
  // lock) until the command ends.
  std::cout.flush();
  const pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid > 0) return 0;
  const int status = run_shell_command(command);
  ::_exit(status);
}

} // namespace procpool::cli
