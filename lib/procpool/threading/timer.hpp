#pragma once
/// @file threading/timer.hpp
/// procpool::threading::Timer, Python's threading.Timer: a Thread that calls a function after
/// an interval unless cancel() comes first.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <utility>

#include "procpool/threading/thread.hpp"

namespace procpool::threading {

namespace detail {

/// What a Timer's thread and cancel() share: the Timer object itself may be gone (a started
/// non-daemon Timer still fires and is joined at exit, as in Python).
class TimerState {
public:
  explicit TimerState(std::chrono::nanoseconds interval) : interval_(interval) {}
  /// Waits out the interval; false when cancelled first.
  bool wait_interval();
  void cancel();

private:
  std::chrono::nanoseconds interval_;
  std::atomic<std::uint32_t> cancelled_{0};  // a futex word
};

template <class F, class... Args>
std::unique_ptr<Task> make_timer_task(std::shared_ptr<TimerState> state, F&& f, Args&&... args) {
  auto task = make_task(std::forward<F>(f), std::forward<Args>(args)...);
  return make_task([st = std::move(state), t = std::move(task)] {
    if (st->wait_interval()) t->call();
  });
}

template <class Rep, class Period>
std::chrono::nanoseconds timer_interval(std::chrono::duration<Rep, Period> interval) {
  // Saturate: an interval of hours::max() means "practically never", not an overflow.
  if (std::chrono::duration<double>(interval) >= std::chrono::duration<double>(std::chrono::nanoseconds::max()))
    return std::chrono::nanoseconds::max();
  return std::chrono::ceil<std::chrono::nanoseconds>(interval);
}

} // namespace detail

/// Python's threading.Timer: `Timer t(3s, fn, args...); t.start(); ... t.cancel();`.
/// A Thread (name "Thread-N", set_name, daemon flags, join, join-at-exit all apply) whose
/// body waits `interval` and then calls `fn(args...)` unless cancel() was called.
/// Not copyable, not movable. May be destroyed while waiting: a started Timer still fires.
class Timer : public Thread {
public:
  template <class Rep, class Period, class F, class... Args>
    requires detail::Target<F, Args...>
  Timer(std::chrono::duration<Rep, Period> interval, F&& fn, Args&&... args)
      : Timer(ThreadOptions{}, interval, std::forward<F>(fn), std::forward<Args>(args)...) {}

  template <class Rep, class Period, class F, class... Args>
    requires detail::Target<F, Args...>
  Timer(ThreadOptions options, std::chrono::duration<Rep, Period> interval, F&& fn, Args&&... args)
      : Timer(std::move(options), std::make_shared<detail::TimerState>(detail::timer_interval(interval)),
              std::forward<F>(fn), std::forward<Args>(args)...) {}

  /// Stops the timer if it is still waiting: the function will not be called. No effect
  /// once the function has started. Thread-safe; may be called before start().
  void cancel() { timer_->cancel(); }

private:
  template <class F, class... Args>
  Timer(ThreadOptions options, std::shared_ptr<detail::TimerState> timer, F&& fn, Args&&... args)
      : Thread(std::move(options), detail::make_timer_task(timer, std::forward<F>(fn), std::forward<Args>(args)...)),
        timer_(std::move(timer)) {}

  std::shared_ptr<detail::TimerState> timer_;
};

} // namespace procpool::threading
