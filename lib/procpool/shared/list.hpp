#pragma once
/// @file shared/list.hpp
/// procpool::shared::List<T>: the list of Python's Manager().list(), in shared memory, with no
/// server process. Survives a holder SIGKILLed mid-update (docs/shared_memory.md).
#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "procpool/backend.hpp"
#include "procpool/detail/shared_container.hpp"
#include "procpool/detail/shared_element.hpp"
#include "procpool/detail/shared_handle.hpp"
#include "procpool/errors.hpp"
#include "procpool/shared/options.hpp"

namespace procpool::shared {

/// A sequence of T in shared memory, for every process and thread that has it: pass it to a
/// Process (fork, spawn, forkserver) or a Pool task like a Value, or use it from threads (the same
/// type serves procpool::dummy). T: std::string, std::vector of trivially copyable, or trivially
/// copyable. Indices follow Python: negative ones count from the end; IndexError past it.
///
/// Every member is thread-safe and process-safe: it takes the List's robust lock for the one
/// operation (reads included), and each operation is all or nothing, also when the caller is
/// killed inside it. Items are copied out. index/count/remove compare with T's operator==. A
/// write costs two updates (the container is kept twice). Pinned (not copyable nor movable).
template <class T>
class List : public detail::SharedHandle<List<T>, Processes> {
  static_assert(detail::SharedElement<T>, "procpool::shared::List<T>: unsupported T. procpool::shared "
                                          "containers hold trivially copyable types, std::string and std::vector of "
                                          "trivially copyable types (other types own heap memory another process "
                                          "cannot see)");
  using TB = detail::ElementBytes<T>;

public:
  using value_type = T;

  /// An empty list.
  explicit List(const Options& options = {})
      : core_(detail::ContainerKind::List, detail::element_type_tag<T>(), options.initial_bytes, options.max_bytes) {}
  /// A list holding `items`.
  List(std::initializer_list<T> items, const Options& options = {}) : List(options) { extend(items); }
  /// Attaches to the list another process of the same user serves under `attach.name` (its
  /// name()). FileNotFoundError if none is served; ValueError if that one holds another T.
  explicit List(const Attach& attach) : core_(detail::ContainerKind::List, detail::element_type_tag<T>(), attach.name) {}
  List(const List&) = delete;
  List& operator=(const List&) = delete;

  /// Item `index`.
  [[nodiscard]] T get(std::ptrdiff_t index) const {
    std::optional<T> out;
    core_.list_get(index, [&](std::string_view v) { out = TB::from(v); });
    return std::move(*out);
  }
  /// `l[i]`: reads or assigns item i, as Python's `l[i]` and `l[i] = v`.
  using Proxy = detail::ItemProxy<List, std::ptrdiff_t, T, &List::get>;
  Proxy operator[](std::ptrdiff_t index) { return Proxy(*this, index); }
  [[nodiscard]] T operator[](std::ptrdiff_t index) const { return get(index); }
  /// `l[index] = value`.
  void set(std::ptrdiff_t index, const T& value) { core_.list_set(index, TB::view(value)); }
  /// Python's append.
  void append(const T& value) {
    const std::string_view one = TB::view(value);
    core_.list_extend({&one, 1});
  }
  /// Python's extend: every item, all or none.
  template <class Range>
  void extend(const Range& items) {
    std::vector<std::string_view> views;
    for (const auto& item : items) views.push_back(TB::view(item));
    core_.list_extend(views);
  }
  void extend(std::initializer_list<T> items) { extend<std::initializer_list<T>>(items); }
  /// Python's insert: before `index` (clamped to the list, never an error).
  void insert(std::ptrdiff_t index, const T& value) { core_.list_insert(index, TB::view(value)); }
  /// Python's pop(index = -1): removes and returns the item; IndexError when empty or past the end.
  T pop(std::ptrdiff_t index = -1) {
    std::optional<T> out;
    core_.list_pop(index, [&](std::string_view v) { out = TB::from(v); });
    return std::move(*out);
  }
  /// Python's index(value, start): the first position of `value`; ValueError if it is not there.
  [[nodiscard]] std::size_t index(const T& value, std::size_t start = 0) const {
    const std::size_t i = core_.list_find([&](std::string_view v) { return TB::from(v) == value; }, start);
    if (i == detail::SharedContainer::npos) throw ValueError("procpool::shared::List.index(x): x not in list");
    return i;
  }
  /// Python's count(value).
  [[nodiscard]] std::size_t count(const T& value) const {
    return core_.list_count([&](std::string_view v) { return TB::from(v) == value; });
  }
  /// Python's `value in l`.
  [[nodiscard]] bool contains(const T& value) const {
    return core_.list_find([&](std::string_view v) { return TB::from(v) == value; }, 0) !=
           detail::SharedContainer::npos;
  }
  /// Python's remove(value): the first equal item; ValueError if there is none.
  void remove(const T& value) {
    if (!core_.list_remove([&](std::string_view v) { return TB::from(v) == value; }))
      throw ValueError("procpool::shared::List.remove(x): x not in list");
  }
  /// Python's clear().
  void clear() { core_.clear(); }
  /// Python's len(l).
  [[nodiscard]] std::size_t size() const { return core_.size(); }
  [[nodiscard]] bool empty() const { return size() == 0; }
  /// A snapshot of every item, in order (one lock hold).
  [[nodiscard]] std::vector<T> to_vector() const {
    std::vector<T> out;
    core_.list_items([&](std::string_view v) { out.push_back(TB::from(v)); });
    return out;
  }
  /// A name for `List(shared::Attach{name})` in any process of the same user: made on the first
  /// call, served while this object lives (not by copies in forked children).
  [[nodiscard]] std::string name() const { return core_.name(); }
  /// Room, use and recoveries (see detail::ContainerStats).
  [[nodiscard]] detail::ContainerStats stats() const { return core_.stats(); }

private:
  friend detail::HandleAccess;
  void encode_handle(std::string& out) const { core_.encode_handle(out); }
  List(detail::AttachTag, std::string_view& in) : core_(detail::ContainerKind::List, detail::element_type_tag<T>(), in) {}

  mutable detail::SharedContainer core_;
};

} // namespace procpool::shared

namespace procpool::dummy::shared {
/// The same type serves threads: its lock and memory work within one process as across many.
template <class T>
using List = procpool::shared::List<T>;
} // namespace procpool::dummy::shared
