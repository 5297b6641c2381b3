#pragma once
/// @file threading/local.hpp
/// procpool::threading::local<T>, Python's threading.local: one value per thread, created on
/// the thread's first access from an initial value, a factory, or T's default constructor.
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

namespace procpool::threading {

namespace detail {

struct LocalControl;  // defined in lib/threading.cpp: the values of one local, per thread

std::shared_ptr<LocalControl> new_local_control();
/// The calling thread's value of the local `id`, or nullptr. Lock-free (a thread_local map).
void* local_find(std::uint64_t id) noexcept;
/// Stores the calling thread's value (takes ownership; `destroy` frees it) and returns it.
void* local_insert(const std::shared_ptr<LocalControl>& control, void* value, void (*destroy)(void*));
/// Destroys the calling thread's value, if any.
void local_erase(const std::shared_ptr<LocalControl>& control);
/// Destroys every thread's value (the local object is going away).
void local_destroy_all(LocalControl& control) noexcept;
std::uint64_t local_id(const LocalControl& control) noexcept;

} // namespace detail

/// Python's threading.local, typed: each thread sees its own T.
///  - `local<T> v;` each thread starts with T{} (use `local<std::optional<T>>` for Python's
///    "no value yet" state);
///  - `local<T> v(1000);` each thread starts with a copy of 1000 (the seed's MyLocal(1000));
///  - `local<T> v([] { return make(); });` each thread calls the factory on its first access,
///    on that thread (like a threading.local subclass's __init__).
/// A thread's value is destroyed on that thread when it exits, or when the local is destroyed
/// (on the destroying thread), whichever comes first.
/// Thread-safety: any number of threads may use the same local concurrently, each touching only
/// its own value; destroying the local while other threads still use it is a data race.
/// Not copyable, not movable.
template <class T>
class local {
public:
  /// Each thread's value starts as T{}.
  local()
    requires std::default_initializable<T>
      : local(FactoryTag{}, [] { return T{}; }) {}

  /// Each thread's value starts as a copy of `initial`.
  explicit local(T initial)
    requires std::copy_constructible<T>
      : local(FactoryTag{}, [v = std::move(initial)] { return v; }) {}

  /// Each thread's value starts as `factory()`, called on that thread at its first access.
  template <class F>
    requires(std::invocable<F&> && std::convertible_to<std::invoke_result_t<F&>, T> &&
             !std::convertible_to<F, T> && !std::same_as<std::remove_cvref_t<F>, local>)
  explicit local(F factory) : local(FactoryTag{}, std::move(factory)) {}

  local(const local&) = delete;
  local& operator=(const local&) = delete;
  local(local&&) = delete;
  local& operator=(local&&) = delete;

  ~local() { detail::local_destroy_all(*control_); }

  /// The calling thread's value, created on first access. Thread-safe (per-thread value).
  T& get() {
    if (void* p = detail::local_find(id_)) return *static_cast<T*>(p);
    void* raw = new T(factory_());  // local_insert owns it from its first instruction
    return *static_cast<T*>(detail::local_insert(control_, raw, [](void* v) { delete static_cast<T*>(v); }));
  }
  T& operator*() { return get(); }
  T* operator->() { return &get(); }

  /// Whether the calling thread has created its value yet. Thread-safe.
  [[nodiscard]] bool has_value() const noexcept { return detail::local_find(id_) != nullptr; }

  /// Destroys the calling thread's value; its next access starts afresh. Thread-safe.
  void reset() { detail::local_erase(control_); }

private:
  using Factory = std::function<T()>;
  struct FactoryTag {};
  local(FactoryTag, Factory factory)
      : control_(detail::new_local_control()), id_(detail::local_id(*control_)), factory_(std::move(factory)) {}

  std::shared_ptr<detail::LocalControl> control_;
  std::uint64_t id_;
  Factory factory_;
};

} // namespace procpool::threading
