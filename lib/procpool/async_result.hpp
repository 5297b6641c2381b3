#pragma once
/// @file async_result.hpp
/// procpool::AsyncResult<R>: Python's multiprocessing.pool.AsyncResult.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "procpool/detail/os/deadline.hpp"
#include "procpool/detail/os/ids.hpp"
#include "procpool/detail/os/wait.hpp"
#include "procpool/detail/sync_support.hpp"
#include "procpool/errors.hpp"

namespace procpool {

template <class Backend>
class BasicPool;

namespace detail {

/// Reports an exception thrown by a pool callback (`which`: "callback" or "error_callback"), which
/// must not change the task's result: logged at error level. Called inside the catch block.
/// Defined in pool/pool_core.cpp.
void report_callback_exception(const char* which) noexcept;

/// Throws ProcessError: a result of process `owner`'s pool waited for in another process (a
/// forked child's copy, which nothing will ever complete). Defined in pool/pool_core.cpp.
[[noreturn]] void throw_foreign_result(pid_t owner);

/// Blocks on `cv` until `ready()` or `deadline`; a saturated deadline (time_point::max(), from a
/// timeout like hours::max()) waits without a timeout. Returns ready().
template <class Lock, class Ready>
bool wait_on(std::condition_variable& cv, Lock& lock, const std::optional<os::SteadyClock::time_point>& deadline,
             Ready ready) {
  if (!deadline || os::is_never(*deadline)) {
    cv.wait(lock, ready);
    return true;
  }
  return cv.wait_until(lock, *deadline, ready);
}

/// A pool whose waiters may handle its results themselves: rather than sleeping until the
/// pool's handler thread completes their task (one more thread hop per result), a thread that
/// waits for a result takes the results straight from the result ring and completes them (its
/// own and any other that comes first), until `ready(context)`.
class ResultDriver {
public:
  virtual ~ResultDriver() = default;
  /// Handles results on the calling thread until `ready(context)` or `deadline`; returns
  /// ready(context). Returns at once, handling nothing, where driving is not possible (another
  /// process, or a thread already handling this pool's results, e.g. inside a callback); and
  /// early, without ready(), once the pool's results have ended: the caller then waits as usual.
  virtual bool drive_until(bool (*ready)(const void*), const void* context, const os::Deadline& deadline) = 0;

  template <class Ready>
  bool drive(const Ready& ready, const os::Deadline& deadline) {
    return drive_until([](const void* r) { return (*static_cast<const Ready*>(r))(); }, &ready, deadline);
  }
};

/// The shared state behind an AsyncResult. Set once (value or error) by the pool's handler.
template <class R>
class ResultState {
public:
  using Stored = std::conditional_t<std::is_void_v<R>, std::monostate, R>;
  using Callback = std::conditional_t<std::is_void_v<R>, std::function<void()>, std::function<void(const Stored&)>>;
  using ErrorCallback = std::function<void(const std::exception&)>;

  ResultState() = default;
  ResultState(Callback callback, ErrorCallback error_callback)
      : callback_(std::move(callback)), error_callback_(std::move(error_callback)) {}

  /// Stores the value, runs the callback (on the caller's thread), then marks the result ready
  /// and wakes waiters: as in Python, get() returns only after the callback has run, so what
  /// the callback wrote is visible to get()'s caller. A callback's exception is reported, never
  /// stored: the result stays the task's.
  void set_value(Stored value) {
    value_.emplace(std::move(value));  // nobody reads it before publish()
    if (callback_) {
      try {
        if constexpr (std::is_void_v<R>) callback_();
        else callback_(*value_);
      } catch (...) {
        report_callback_exception("callback");
      }
    }
    publish();
  }

  /// Stores the error, runs the error callback, then marks the result ready (as set_value).
  void set_error(std::exception_ptr error) {
    error_ = error;
    if (error_callback_) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        try {
          error_callback_(e);
        } catch (...) {
          report_callback_exception("error_callback");
        }
      } catch (...) {
        // Not a std::exception: error_callback cannot take it; get() still rethrows it.
      }
    }
    publish();
  }

  /// The pool whose results this waits for: waiters then complete results themselves.
  void set_driver(std::weak_ptr<ResultDriver> driver) { driver_ = std::move(driver); }

  bool wait_until(const std::optional<std::chrono::steady_clock::time_point>& deadline) {
    const auto published = [&] { return published_.load(std::memory_order_acquire); };
    if (published()) return true;
    if (const std::shared_ptr<ResultDriver> driver = driver_.lock()) {
      if (driver->drive(published, deadline)) return true;
    } else if (os::may_spin(deadline)) {
      // A short task's result usually arrives within microseconds: spin first (os::spin_until,
      // the one wait policy), then sleep on the condition variable.
      (void)os::spin_until(published);
    }
    std::unique_lock lock(mutex_);
    if (!ready_ && os::current_pid() != owner_) throw_foreign_result(owner_);
    return wait_on(cv_, lock, deadline, [&] { return ready_; });
  }

  [[nodiscard]] bool ready() const {
    std::lock_guard lock(mutex_);
    return ready_;
  }

  /// Throws the error, or returns the value (ready() must be true).
  const Stored& value_or_throw() const {
    std::lock_guard lock(mutex_);
    if (error_) std::rethrow_exception(error_);
    return *value_;
  }
  /// Moves the value out (map() uses it: the result is not read again).
  Stored take_or_throw() {
    std::lock_guard lock(mutex_);
    if (error_) std::rethrow_exception(error_);
    return std::move(*value_);
  }
  [[nodiscard]] bool has_error() const {
    std::lock_guard lock(mutex_);
    return error_ != nullptr;
  }

private:
  void publish() {
    {
      std::lock_guard lock(mutex_);
      ready_ = true;
      published_.store(true, std::memory_order_release);
    }
    cv_.notify_all();
  }

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool ready_ = false;
  std::atomic<bool> published_{false};  ///< ready_, readable without the mutex (for spinning)
  std::optional<Stored> value_;
  std::exception_ptr error_;
  Callback callback_;
  ErrorCallback error_callback_;
  std::weak_ptr<ResultDriver> driver_;
  pid_t owner_ = os::current_pid();  ///< the process whose pool completes this result
};

} // namespace detail

/// The future result of apply_async / map_async / starmap_async.
///
/// The result becomes ready only after its callback or error_callback has returned (Python's
/// order), so get() and wait() also wait for the callback. A callback that throws does not
/// change the result; its exception is logged (error level).
///
/// Thread-safety: every member may be called from any thread, concurrently. Copies share the
/// same result. Waiting in a forked child for a result that was not ready at fork() throws
/// ProcessError (only the pool's own process can complete it).
template <class R>
class [[nodiscard]] AsyncResult {
public:
  explicit AsyncResult(std::shared_ptr<detail::ResultState<R>> state) : state_(std::move(state)) {}

  /// Waits for the result and returns it, or rethrows the task's error: RemoteError (with the
  /// worker exception's type name and message), WorkerLostError, BrokenProcessPool.
  R get() const& {
    state_->wait_until(std::nullopt);
    return result();
  }
  /// get() on a temporary (`pool.apply_async(f, x).get()`): when no other AsyncResult shares
  /// the result, the value is moved out instead of copied (a 256 MiB vector is not copied). A
  /// move-only result (thread backend: `std::unique_ptr`...) is always moved out: take it once.
  R get() && {
    state_->wait_until(std::nullopt);
    return moved_or_copied();
  }
  /// Same, but throws TimeoutError if the result is not ready within `timeout` (a timeout too
  /// long to represent, e.g. hours::max(), waits forever).
  template <class Rep, class Period>
  R get(std::chrono::duration<Rep, Period> timeout) const& {
    if (!wait(timeout)) throw TimeoutError("procpool: the result was not ready within the timeout");
    return result();
  }
  template <class Rep, class Period>
  R get(std::chrono::duration<Rep, Period> timeout) && {
    if (!wait(timeout)) throw TimeoutError("procpool: the result was not ready within the timeout");
    return moved_or_copied();
  }
  /// Waits for the result (value or error).
  void wait() const { state_->wait_until(std::nullopt); }
  /// Waits at most `timeout`; true when the result is ready.
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) const {
    return state_->wait_until(os::deadline_after(timeout));  // saturates: hours::max() waits forever
  }
  /// Whether the task has finished (successfully or not).
  [[nodiscard]] bool ready() const { return state_->ready(); }
  /// Whether the task finished without error. Throws ValueError if not ready yet, as Python.
  [[nodiscard]] bool successful() const {
    if (!ready()) throw ValueError("procpool: the result is not ready; successful() needs a finished task");
    return !state_->has_error();
  }

private:
  template <class Backend>
  friend class BasicPool;

  /// get() that moves the value out instead of copying it: for the pool's blocking calls
  /// (map, starmap, apply), whose AsyncResult nobody else holds and which have no callback
  /// that could still be reading the value.
  R take() {
    state_->wait_until(std::nullopt);
    return moved_result();
  }
  R moved_result() {
    if constexpr (std::is_void_v<R>) (void)state_->value_or_throw();
    else return state_->take_or_throw();
  }
  R moved_or_copied() {
    if constexpr (std::is_void_v<R> || std::is_copy_constructible_v<R>)
      return sole_owner() ? moved_result() : result();
    else
      return moved_result();
  }
  /// Whether this object alone holds the result (the pool has let go of it once it is ready;
  /// if it has not yet, the caller copies, which is only slower).
  [[nodiscard]] bool sole_owner() const noexcept { return state_.use_count() == 1; }

  R result() const {
    if constexpr (std::is_void_v<R>) (void)state_->value_or_throw();
    else return state_->value_or_throw();
  }
  std::shared_ptr<detail::ResultState<R>> state_;
};

} // namespace procpool
