#pragma once
/// @file shared/dict.hpp
/// procpool::shared::Dict<K, V>: the dict of Python's Manager().dict(), in shared memory, with no
/// server process. Survives a holder SIGKILLed mid-update (docs/shared_memory.md).
#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "procpool/backend.hpp"
#include "procpool/detail/shared_container.hpp"
#include "procpool/detail/shared_element.hpp"
#include "procpool/detail/shared_handle.hpp"
#include "procpool/shared/options.hpp"

namespace procpool::shared {

/// A hash map from K to V in shared memory, for every process and thread that has it: pass it to
/// a Process (fork, spawn, forkserver) or a Pool task like a Value, or use it from threads (the
/// same type serves procpool::dummy). K: std::string, std::vector of, or a trivially copyable type
/// whose bytes decide equality (integers, enums, padding-free structs; not float). V: std::string,
/// std::vector of trivially copyable, or trivially copyable. Lookups with string keys take a
/// std::string_view.
///
/// Every member is thread-safe and process-safe: it takes the Dict's robust lock for the one
/// operation (reads included), and each operation is all or nothing, also when the caller is
/// killed inside it. Values are copied out; keys()/values()/items() are consistent snapshots in
/// an unspecified order (not insertion order, unlike a Python dict). A write costs two updates
/// (the container is kept twice). Pinned (not copyable nor movable).
template <class K, class V>
class Dict : public detail::SharedHandle<Dict<K, V>, Processes> {
  static_assert(detail::SharedKey<K>, "procpool::shared::Dict<K, V>: K must be std::string, a std::vector of "
                                      "trivially copyable values, or a trivially copyable type without padding or "
                                      "floating point (its bytes are compared and hashed)");
  static_assert(detail::SharedElement<V>, "procpool::shared::Dict<K, V>: unsupported V. procpool::shared "
                                          "containers hold trivially copyable types, std::string and std::vector of "
                                          "trivially copyable types (other types own heap memory another process "
                                          "cannot see)");
  using KB = detail::ElementBytes<K>;
  using VB = detail::ElementBytes<V>;
  using Key = detail::KeyArg<K>;

public:
  using key_type = K;
  using mapped_type = V;

  /// An empty dict.
  explicit Dict(const Options& options = {})
      : core_(detail::ContainerKind::Dict, detail::element_type_tag<K, V>(), options.initial_bytes, options.max_bytes) {}
  /// A dict holding `items` (later ones win, as Python's dict()).
  Dict(std::initializer_list<std::pair<K, V>> items, const Options& options = {}) : Dict(options) { update(items); }
  /// Attaches to the dict another process of the same user serves under `attach.name` (its
  /// name()). FileNotFoundError if none is served; ValueError if that one has other K or V.
  explicit Dict(const Attach& attach)
      : core_(detail::ContainerKind::Dict, detail::element_type_tag<K, V>(), attach.name) {}
  Dict(const Dict&) = delete;
  Dict& operator=(const Dict&) = delete;

  /// The value of `key`, or nullopt.
  [[nodiscard]] std::optional<V> get(Key key) const {
    std::optional<V> out;
    core_.dict_get(detail::key_view<K>(key), [&](std::string_view v) { out = VB::from(v); });
    return out;
  }
  /// The value of `key`, or `fallback` (Python's get(key, default)).
  [[nodiscard]] V get(Key key, const V& fallback) const {
    std::optional<V> out = get(key);
    return out ? std::move(*out) : fallback;
  }
  /// The value of `key`; KeyError when absent.
  [[nodiscard]] V at(Key key) const {
    std::optional<V> out = get(key);
    if (!out) throw KeyError("procpool::shared::Dict: key not found");
    return std::move(*out);
  }
  /// `d[key]`, read or assigned through the proxy.
  /// `d[key]`: reads (KeyError when absent) or assigns, as Python's `d[key]` and `d[key] = v`.
  using Proxy = detail::ItemProxy<Dict, Key, V, &Dict::at>;
  Proxy operator[](Key key) { return Proxy(*this, key); }
  [[nodiscard]] V operator[](Key key) const { return at(key); }
  /// `d[key] = value`.
  void set(Key key, const V& value) { core_.dict_set(detail::key_view<K>(key), VB::view(value)); }
  /// Python's `key in d`.
  [[nodiscard]] bool contains(Key key) const { return core_.dict_contains(detail::key_view<K>(key)); }
  /// Python's `del d[key]` without the KeyError: whether it was there.
  bool erase(Key key) {
    return core_.dict_pop(detail::key_view<K>(key), [](std::string_view) {});
  }
  /// Python's pop(key): removes and returns the value; nullopt when absent.
  std::optional<V> pop(Key key) {
    std::optional<V> out;
    core_.dict_pop(detail::key_view<K>(key), [&](std::string_view v) { out = VB::from(v); });
    return out;
  }
  /// Python's pop(key, default).
  V pop(Key key, const V& fallback) {
    std::optional<V> out = pop(key);
    return out ? std::move(*out) : fallback;
  }
  /// Python's setdefault: the value of `key`, inserting `fallback` first if it is absent.
  V setdefault(Key key, const V& fallback) {
    std::optional<V> out;
    core_.dict_setdefault(detail::key_view<K>(key), VB::view(fallback),
                          [&](std::string_view v) { out = VB::from(v); });
    return std::move(*out);
  }
  /// An atomic read-modify-write (Python needs a separate lock for `d[k] += 1`): `fn(V&)` changes
  /// the value of `key` (`initial` when absent) and the result is stored; returns it. `fn` runs
  /// under the Dict's lock: it must not use this Dict (StateError). If it throws, nothing changes.
  template <class F>
  V modify(Key key, const V& initial, F&& fn) {
    V value = initial;
    core_.dict_modify(detail::key_view<K>(key), [&](const std::string_view* old) -> std::string_view {
      if (old != nullptr) value = VB::from(*old);
      fn(value);
      return VB::view(value);
    });
    return value;
  }
  /// Sets every pair, all or none (Python's update).
  template <class Range>
  void update(const Range& items) {
    std::vector<std::pair<std::string_view, std::string_view>> views;
    for (const auto& [k, v] : items) views.emplace_back(KB::view(k), VB::view(v));
    core_.dict_update(views);
  }
  void update(std::initializer_list<std::pair<K, V>> items) { update<std::initializer_list<std::pair<K, V>>>(items); }
  /// Python's clear().
  void clear() { core_.clear(); }
  /// Python's len(d).
  [[nodiscard]] std::size_t size() const { return core_.size(); }
  [[nodiscard]] bool empty() const { return size() == 0; }
  /// Snapshots (one lock hold each).
  [[nodiscard]] std::vector<K> keys() const {
    std::vector<K> out;
    core_.dict_items([&](std::string_view k, std::string_view) { out.push_back(KB::from(k)); });
    return out;
  }
  [[nodiscard]] std::vector<V> values() const {
    std::vector<V> out;
    core_.dict_items([&](std::string_view, std::string_view v) { out.push_back(VB::from(v)); });
    return out;
  }
  [[nodiscard]] std::vector<std::pair<K, V>> items() const {
    std::vector<std::pair<K, V>> out;
    core_.dict_items([&](std::string_view k, std::string_view v) { out.emplace_back(KB::from(k), VB::from(v)); });
    return out;
  }
  /// A name for `Dict(shared::Attach{name})` in any process of the same user: made on the first
  /// call, served while this object lives (not by copies in forked children). Processes that
  /// attached keep the dict after that. No file anywhere (see SharedMemory's names).
  [[nodiscard]] std::string name() const { return core_.name(); }
  /// Room, use and recoveries (see detail::ContainerStats).
  [[nodiscard]] detail::ContainerStats stats() const { return core_.stats(); }

private:
  friend detail::HandleAccess;
  void encode_handle(std::string& out) const { core_.encode_handle(out); }
  Dict(detail::AttachTag, std::string_view& in) : core_(detail::ContainerKind::Dict, detail::element_type_tag<K, V>(), in) {}

  mutable detail::SharedContainer core_;
};

} // namespace procpool::shared

namespace procpool::dummy::shared {
/// The same type serves threads: its lock and memory work within one process as across many.
template <class K, class V>
using Dict = procpool::shared::Dict<K, V>;
} // namespace procpool::dummy::shared
