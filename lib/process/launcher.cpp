// The stable launcher thread: children are started from a thread that lives as long as the
// process, because PR_SET_PDEATHSIG fires when the *thread* that started a child ends.
#include <condition_variable>
#include <exception>
#include <mutex>
#include <new>
#include <thread>

#include "process/children.hpp"
#include "procpool/detail/os/ids.hpp"
#include "procpool/log.hpp"

namespace procpool::detail {
namespace {

class Launcher {
public:
  Launcher() { std::thread([this] { loop(); }).detach(); }
  void run(const std::function<void()>& fn) {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return job_ == nullptr; });
    std::exception_ptr error;
    bool done = false;
    job_ = [&] {
      try {
        fn();
      } catch (...) {
        error = std::current_exception();
      }
    };
    done_flag_ = &done;
    cv_.notify_all();
    cv_.wait(lock, [&] { return done; });
    if (error) std::rethrow_exception(error);
  }

private:
  void loop() {
    thread_name_slot() = "procpool-launcher";
    std::unique_lock lock(mutex_);
    for (;;) {
      cv_.wait(lock, [&] { return job_ != nullptr; });
      auto job = std::move(job_);
      lock.unlock();
      job();
      lock.lock();
      job_ = nullptr;
      *done_flag_ = true;
      cv_.notify_all();
    }
  }
  std::mutex mutex_;
  std::condition_variable cv_;
  std::function<void()> job_;
  bool* done_flag_ = nullptr;
};

// Constant-initialised (no guard): a plain pointer, reset in a child by launcher_forget_after_fork().
constinit Launcher* g_launcher = nullptr;
std::mutex launcher_mutex;

} // namespace

void run_on_stable_thread(const std::function<void()>& fn) {
  if (os::is_main_thread()) {
    fn();
    return;
  }
  Launcher* launcher = nullptr;
  {
    std::lock_guard lock(launcher_mutex);
    if (g_launcher == nullptr) g_launcher = new Launcher();  // lives as long as the process
    launcher = g_launcher;
  }
  launcher->run(fn);
}

void launcher_forget_after_fork() {
  g_launcher = nullptr;
  new (&launcher_mutex) std::mutex();  // may have been held by another thread (it starts the launcher)
}

} // namespace procpool::detail
