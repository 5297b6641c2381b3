#pragma once
// Process-wide objects that must survive fork() and exit (not installed).
//
// A function-local static with a dynamic initialiser is guarded (__cxa_guard_acquire): a
// fork while another thread runs that first initialisation copies the guard "in progress"
// into the child, whose first use then waits for it forever (issue 10, item 6). Use a
// constinit LoadTimeObject at namespace scope instead, and build it from a
// [[gnu::constructor]] so it exists before any thread can fork:
//
//   constinit LoadTimeObject<Registry> g_registry;
//   [[gnu::constructor]] void build_at_load() { (void)g_registry.get(); }
//
// get() never blocks: before the constructor has run (another object's static initialiser,
// or a dynamic loader that runs ours later) it builds the object itself and publishes it
// with a compare-exchange; a racing loser discards its copy. A fork in the middle leaves the
// child with either the published object or none, never a half-built one. The object is
// never destroyed (threads and exit handlers may use it while static destructors run), and
// the holder itself is trivially destructible, so it is usable at any point of exit too.
#include <atomic>

namespace procpool::detail {

template <class T>
class LoadTimeObject {
public:
  constexpr LoadTimeObject() noexcept = default;
  LoadTimeObject(const LoadTimeObject&) = delete;
  LoadTimeObject& operator=(const LoadTimeObject&) = delete;

  T& get() {
    T* p = ptr_.load(std::memory_order_acquire);
    return p != nullptr ? *p : build();
  }

private:
  [[gnu::noinline]] T& build() {
    T* fresh = new T();
    T* expected = nullptr;
    if (ptr_.compare_exchange_strong(expected, fresh, std::memory_order_acq_rel, std::memory_order_acquire))
      return *fresh;
    delete fresh;  // another thread published first; nobody saw ours
    return *expected;
  }

  std::atomic<T*> ptr_{nullptr};
};

} // namespace procpool::detail
