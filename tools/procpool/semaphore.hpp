#pragma once
// `procpool sem` (= `procpool run --semaphore`), GNU parallel's sem (issue 15): a counting semaphore
// shared by every invocation with the same --id. Each held slot is a lock file held with flock(), so a
// holder that dies, even by SIGKILL, frees its slot: the kernel drops the lock with its last descriptor.
#include "os/fd.hpp"

#include <optional>
#include <string>
#include <vector>

namespace procpool::cli {

struct SemOptions {
  unsigned jobs = 1;        ///< -j: slots (GNU sem's default 1: a mutex)
  std::string id;           ///< --id; default: the terminal's name, as GNU sem (`tty`'s output)
  bool fg = false;          ///< --fg: run the command here and exit with its status
  bool wait = false;        ///< --wait: wait until no slot of the id is held
  double timeout = 0;       ///< --st: > 0 take the slot anyway after it, < 0 give up (exit 1); 0 never
  std::vector<std::string> command;  ///< joined by spaces, run by /bin/sh -c
};

/// Parses the arguments after `sem` (or `run --semaphore`). Throws UsageError; nullopt after --help.
std::optional<SemOptions> parse_sem_options(const std::vector<std::string>& args);

/// True when `run`'s arguments ask for GNU parallel's semaphore mode (--semaphore, --fg, --bg,
/// --wait, --id, --st among the options before the command).
bool is_semaphore_run(const std::vector<std::string>& args);

/// The slots of one semaphore: lock files `slot.N` in `dir` (made 0700 if missing), and a lock file
/// taken while slots are counted, so that two invocations never both see the last one free.
class SemaphoreSlots {
 public:
  explicit SemaphoreSlots(std::string dir);
  /// A slot's locked descriptor when fewer than `limit` slots are held; an empty one otherwise.
  os::UniqueFd try_acquire(unsigned limit);
  /// Returns once every slot held when it looked has been released.
  void wait_all_released();
  [[nodiscard]] const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

/// The directory of semaphore `id`: $PROCPOOL_SEMAPHORE_DIR, else $XDG_RUNTIME_DIR/procpool-semaphores,
/// else ~/.procpool/semaphores; then id-NAME with GNU sem's escaping (bytes other than [-_a-z0-9] in hex).
std::string semaphore_dir(const std::string& id);

/// Runs `procpool sem`: the exit status (--fg: the command's; --bg: 0 once it started; 1 when --st
/// gave up; 255 on errors).
int run_semaphore(const SemOptions& options);

} // namespace procpool::cli
