#pragma once
// Shared helpers of the sync suites: running N workers as threads or as forked processes,
// over a backend bundle (procpool::Processes or procpool::Threads, see procpool/backend.hpp).
#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include <procpool/sync.hpp>

namespace synctest {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// Runs body(i) for i in [0, n) concurrently, in threads or in forked children, and returns
/// how many of them failed (returned false or threw). A child reports through its exit code.
template <class B>
int run_workers(int n, const std::function<bool(int)>& body) {
  if constexpr (B::interprocess) {
    std::vector<pid_t> pids;
    for (int i = 0; i < n; ++i) {
      std::fflush(nullptr);
      const pid_t pid = ::fork();
      if (pid < 0) return n;
      if (pid == 0) {
        bool ok = false;
        try {
          ok = body(i);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "worker %d threw: %s\n", i, e.what());
        }
        std::fflush(nullptr);
        ::_exit(ok ? 0 : 1);
      }
      pids.push_back(pid);
    }
    int failures = 0;
    for (const pid_t pid : pids) {
      int status = 0;
      if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failures;
    }
    return failures;
  } else {
    std::vector<std::thread> threads;
    std::vector<char> ok(static_cast<std::size_t>(n), 0);
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([&, i] {
        try {
          ok[static_cast<std::size_t>(i)] = body(i) ? 1 : 0;
        } catch (const std::exception& e) {
          std::fprintf(stderr, "worker %d threw: %s\n", i, e.what());
        }
      });
    }
    for (auto& t : threads) t.join();
    int failures = 0;
    for (const char c : ok) failures += c ? 0 : 1;
    return failures;
  }
}

/// Starts body() in a forked child (processes) or a thread (threads); join() waits and
/// returns whether it succeeded.
template <class B>
class Worker {
public:
  explicit Worker(std::function<bool()> body) : body_(std::move(body)) {
    if constexpr (B::interprocess) {
      std::fflush(nullptr);
      pid_ = ::fork();
      if (pid_ == 0) {
        bool ok = false;
        try {
          ok = body_();
        } catch (const std::exception& e) {
          std::fprintf(stderr, "worker threw: %s\n", e.what());
        }
        std::fflush(nullptr);
        ::_exit(ok ? 0 : 1);
      }
    } else {
      thread_ = std::thread([this] {
        try {
          ok_ = body_();
        } catch (const std::exception& e) {
          std::fprintf(stderr, "worker threw: %s\n", e.what());
        }
      });
    }
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker() {
    if (!joined_) (void)join();
  }
  bool join() {
    joined_ = true;
    if constexpr (B::interprocess) {
      int status = 0;
      return ::waitpid(pid_, &status, 0) == pid_ && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    } else {
      thread_.join();
      return ok_;
    }
  }
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }

private:
  std::function<bool()> body_;
  pid_t pid_ = -1;
  std::thread thread_;
  bool ok_ = false;
  bool joined_ = false;
};

} // namespace synctest
