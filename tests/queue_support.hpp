#pragma once
// Helpers of the queue suites: run workers as forked processes (procpool::Processes) or as
// threads (procpool::Threads), and collect their exit status in the parent.
#include <chrono>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include <unistd.h>

#include <procpool/procpool.hpp>

namespace qtest {

/// Workers of a backend: processes (fork) or threads. Each returns 0 on success, else a code
/// that the parent checks (a check in a child must reach the parent).
template <class Backend>
class Workers {
public:
  template <class F>
  void spawn(F f) {
    if constexpr (Backend::interprocess) {
      auto p = std::make_unique<procpool::Process>(
          procpool::ProcessOptions{.name = {}, .daemon = std::nullopt, .start_method = procpool::StartMethod::Fork},
          [f]() mutable { ::_exit(f()); });
      p->start();
      procs_.push_back(std::move(p));
    } else {
      auto slot = std::make_shared<int>(-1);
      codes_.push_back(slot);
      threads_.emplace_back([f, slot]() mutable { *slot = f(); });
    }
  }
  /// Joins everyone; returns the exit codes in spawn order.
  std::vector<int> join() {
    std::vector<int> codes;
    for (auto& p : procs_) {
      p->join();
      codes.push_back(p->exitcode().value_or(-100));
    }
    for (auto& t : threads_) t.join();
    for (auto& c : codes_) codes.push_back(*c);
    procs_.clear();
    threads_.clear();
    codes_.clear();
    return codes;
  }
  /// The processes (process backend only), e.g. to kill one.
  std::vector<std::unique_ptr<procpool::Process>>& processes() { return procs_; }

private:
  std::vector<std::unique_ptr<procpool::Process>> procs_;
  std::vector<std::thread> threads_;
  std::vector<std::shared_ptr<int>> codes_;
};

inline bool all_zero(const std::vector<int>& codes) {
  for (int c : codes)
    if (c != 0) return false;
  return true;
}

inline std::chrono::milliseconds ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
}

} // namespace qtest
