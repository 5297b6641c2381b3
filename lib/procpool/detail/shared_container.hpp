#pragma once
/// @file detail/shared_container.hpp
/// The one implementation under procpool::shared::Dict, List and String: a container of bytes
/// kept twice in one memfd segment, so that a holder killed mid-update (inside the allocator, a
/// rehash, anywhere) leaves it whole. Defined in lib/shared_containers.cpp (Boost.Interprocess
/// stays there: the public headers do not need it).
///
/// Layout: a header page (the robust lock, `active`, `standby_dirty`, where each copy lives),
/// then two heaps, each a Boost.Interprocess segment manager holding one complete copy with
/// offset pointers (so the segment works at any address, in spawned children too). A write, under
/// the lock: set `standby_dirty`, apply the operation to the standby copy, make it the active one
/// with one store, apply the operation to the other copy, clear `standby_dirty`. Whoever takes the
/// lock for a write and finds `standby_dirty` set (its last holder died mid-write) first rebuilds
/// the standby heap from scratch as a deep copy of the active one. Reads take the lock and read
/// the active copy. A write that does not fit doubles both heaps (the segment grows with
/// ftruncate; other processes map the larger size when they next take the lock).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "procpool/detail/shm.hpp"

namespace procpool::detail {

/// A callable passed down by reference (no allocation): valid while the call it is passed to runs.
template <class Sig>
class FnRef;
template <class R, class... A>
class FnRef<R(A...)> {
public:
  template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, FnRef> && std::is_invocable_r_v<R, F&, A...>)
  FnRef(F&& f) noexcept  // NOLINT(google-explicit-constructor): a parameter type, built from lambdas
      : object_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* object, A... args) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(object))(std::forward<A>(args)...);
        }) {}
  R operator()(A... args) const { return call_(object_, std::forward<A>(args)...); }

private:
  void* object_;
  R (*call_)(void*, A...);
};

enum class ContainerKind : std::uint32_t { Dict = 1, List = 2, String = 3 };

/// A snapshot of a container's bookkeeping (for tests and tuning).
struct ContainerStats {
  std::size_t capacity_bytes = 0;  ///< the active copy's heap
  std::size_t used_bytes = 0;      ///< of which allocated
  std::uint64_t recoveries = 0;    ///< standby copies rebuilt after a holder died mid-write
  std::uint64_t grows = 0;         ///< times both heaps doubled
};

/// Called, when set, at the points of a write where a crash matters: 1 after the standby copy was
/// changed (not yet active), 2 right after the switch (the other copy not yet changed); while
/// growing, 3 with the copy in the new heap made (not yet active), 4 right after the switch (the
/// old heaps not yet rebuilt). For the crash tests only (a forked child sets it to kill itself
/// there); null otherwise.
extern void (*shared_container_fault_hook)(int point) noexcept;

/// Pinned. Every member takes the container's robust lock (thread-safe and process-safe); the
/// callbacks run under it and must not use the same container.
class SharedContainer {
public:
  using View = FnRef<void(std::string_view)>;
  using PairView = FnRef<void(std::string_view, std::string_view)>;
  using Match = FnRef<bool(std::string_view)>;
  using Compute = FnRef<std::string_view(const std::string_view* old)>;
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

  /// A new, empty container whose elements have the fingerprint `type_tag`. ValueError for sizes
  /// out of range, ProcessError if the segment cannot be made.
  SharedContainer(ContainerKind kind, std::uint64_t type_tag, std::size_t initial_bytes, std::size_t max_bytes);
  /// Attaches to the container described at the front of `in` (consumed): a spawned child.
  SharedContainer(ContainerKind kind, std::uint64_t type_tag, std::string_view& in);
  /// Attaches to the container another process serves under `name` (see name()):
  /// FileNotFoundError if none is served, ValueError if it holds another kind or other types.
  SharedContainer(ContainerKind kind, std::uint64_t type_tag, const std::string& name);
  SharedContainer(const SharedContainer&) = delete;
  SharedContainer& operator=(const SharedContainer&) = delete;
  ~SharedContainer();

  /// Appends what a spawned child needs to attach.
  void encode_handle(std::string& out) const;
  /// The name under which this process serves the container to processes of the same user
  /// (made on first call; served until this object is destroyed or this process ends).
  [[nodiscard]] std::string name() const;

  [[nodiscard]] std::size_t size() const;
  void clear();
  [[nodiscard]] ContainerStats stats() const;

  // Dict: keys and values are bytes.
  bool dict_get(std::string_view key, View out) const;
  [[nodiscard]] bool dict_contains(std::string_view key) const;
  void dict_set(std::string_view key, std::string_view value);
  /// Inserts (key, value) unless the key is there; `out` sees the value the key then has.
  bool dict_setdefault(std::string_view key, std::string_view value, View out);
  /// Removes `key`, `out` seeing its value first; false if it was not there.
  bool dict_pop(std::string_view key, View out);
  /// Sets every pair, all or none.
  void dict_update(std::span<const std::pair<std::string_view, std::string_view>> items);
  /// Sets `key` to what `compute` returns from its current value (null: absent).
  void dict_modify(std::string_view key, Compute compute);
  void dict_items(PairView each) const;

  // List: Python's index rules (negative from the end; IndexError past it).
  void list_get(std::ptrdiff_t index, View out) const;
  void list_set(std::ptrdiff_t index, std::string_view value);
  /// Python's insert: the index is clamped, never an error.
  void list_insert(std::ptrdiff_t index, std::string_view value);
  /// Appends every value, all or none.
  void list_extend(std::span<const std::string_view> values);
  void list_pop(std::ptrdiff_t index, View out);
  /// The first index at or after `start` whose item matches, or npos.
  [[nodiscard]] std::size_t list_find(Match match, std::size_t start) const;
  [[nodiscard]] std::size_t list_count(Match match) const;
  /// Removes the first matching item; false if none matches.
  bool list_remove(Match match);
  void list_items(View each) const;

  // String.
  void string_get(View out) const;
  void string_assign(std::string_view value);
  void string_append(std::string_view value);

private:
  class Held;
  struct Header;
  Header& header() const noexcept;
  void remap() const;
  template <class Root>
  Root& root(std::uint32_t slot) const noexcept;
  template <class Root>
  const Root& active() const noexcept;
  template <class Root>
  void build(std::uint32_t slot, const Root* source);
  template <class Root>
  void ensure_standby();
  template <class Root>
  void grow();
  template <class Root, class Op>
  void write(Op&& op);

  void check_header(std::uint64_t type_tag) const;

  ContainerKind kind_;
  mutable std::string served_name_;  // set under the lock
  SharedSegment segment_;  // the first mapping: the header (and its lock) stay here for good
  // The newest mapping of the whole segment, which grows (changed under the lock only; the
  // heaps are read through it, always under the lock). Null while segment_ maps it all.
  mutable char* base_ = nullptr;
  mutable std::size_t mapped_ = 0;
  mutable void* grown_map_ = nullptr;
};

} // namespace procpool::detail
