// procpool::threading::local<T>: the type-erased storage behind it.
//
// Each local owns a control block mapping thread -> value (under a mutex), so destroying the
// local frees every thread's value. Each thread keeps a thread_local cache id -> value, so a
// lookup takes no lock; ids are never reused, so a stale cache entry is never hit, and it holds
// a weak_ptr to the control block, so at thread exit the thread frees its own values.
#include "procpool/threading/local.hpp"

#include <atomic>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace procpool::threading::detail {

using Owned = std::unique_ptr<void, void (*)(void*)>;

struct ThreadValues;

struct LocalControl {
  std::uint64_t id = 0;
  std::mutex mutex;
  std::unordered_map<const ThreadValues*, Owned> values;  // guarded by mutex
};

namespace {

std::atomic<std::uint64_t> next_id{1};

// Frees this thread's value of `control`, outside its mutex (a destructor may use locals too).
void free_value_of(const ThreadValues* owner, LocalControl& control) {
  Owned value{nullptr, [](void*) {}};
  {
    std::lock_guard lock(control.mutex);
    auto it = control.values.find(owner);
    if (it == control.values.end()) return;
    value = std::move(it->second);
    control.values.erase(it);
  }
}

} // namespace

struct ThreadValues {
  struct Entry {
    void* value;
    std::weak_ptr<LocalControl> control;
  };
  std::unordered_map<std::uint64_t, Entry> entries;
  std::size_t prune_at = 32;

  // Drops the entries of locals that no longer exist, so a long-lived thread that meets many
  // short-lived locals does not grow without bound.
  void prune() {
    std::erase_if(entries, [](const auto& kv) { return kv.second.control.expired(); });
    prune_at = std::max<std::size_t>(32, entries.size() * 2);
  }

  ~ThreadValues() {
    // A value's destructor may touch other locals of this thread: drain until nothing is left.
    while (!entries.empty()) {
      auto batch = std::move(entries);
      entries.clear();
      for (auto& [id, entry] : batch)
        if (auto control = entry.control.lock()) free_value_of(this, *control);
    }
  }
};

namespace {
thread_local ThreadValues tl_values;
} // namespace

std::shared_ptr<LocalControl> new_local_control() {
  auto control = std::make_shared<LocalControl>();
  control->id = next_id.fetch_add(1, std::memory_order_relaxed);
  return control;
}

std::uint64_t local_id(const LocalControl& control) noexcept { return control.id; }

void* local_find(std::uint64_t id) noexcept {
  auto it = tl_values.entries.find(id);
  return it == tl_values.entries.end() ? nullptr : it->second.value;
}

void* local_insert(const std::shared_ptr<LocalControl>& control, void* value, void (*destroy)(void*)) {
  Owned owned{value, destroy};
  if (tl_values.entries.size() >= tl_values.prune_at) tl_values.prune();
  auto [entry, inserted] = tl_values.entries.insert_or_assign(control->id, ThreadValues::Entry{value, control});
  try {
    std::lock_guard lock(control->mutex);
    control->values.insert_or_assign(&tl_values, std::move(owned));
  } catch (...) {
    tl_values.entries.erase(entry);
    throw;  // `owned` frees the value
  }
  return value;
}

void local_erase(const std::shared_ptr<LocalControl>& control) {
  tl_values.entries.erase(control->id);
  free_value_of(&tl_values, *control);
}

void local_destroy_all(LocalControl& control) noexcept {
  std::unordered_map<const ThreadValues*, Owned> values;
  {
    std::lock_guard lock(control.mutex);
    values.swap(control.values);
  }
  tl_values.entries.erase(control.id);
  values.clear();  // every thread's value, destroyed here (the local is going away)
}

} // namespace procpool::threading::detail
