#pragma once
/// @file shared/string.hpp
/// procpool::shared::String: a std::string in shared memory (Manager().Value('c', ...) /
/// Namespace text without a server), growing as needed. Survives a holder SIGKILLed mid-update.
#include <cstddef>
#include <string>
#include <string_view>

#include "procpool/backend.hpp"
#include "procpool/detail/shared_container.hpp"
#include "procpool/detail/shared_element.hpp"
#include "procpool/detail/shared_handle.hpp"
#include "procpool/shared/options.hpp"

namespace procpool::shared {

/// Text (any bytes) in shared memory, for every process and thread that has it: pass it to a
/// Process (fork, spawn, forkserver) or a Pool task like a Value, or use it from threads (the same
/// type serves procpool::dummy). Every member is thread-safe and process-safe: it takes the
/// String's robust lock for the one operation, all or nothing, also when the caller is killed
/// inside it. Pinned (not copyable nor movable).
class String : public detail::SharedHandle<String, Processes> {
public:
  /// Holding `initial`.
  explicit String(std::string_view initial = {}, const Options& options = {})
      : core_(detail::ContainerKind::String, detail::element_type_tag<std::string>(), options.initial_bytes, options.max_bytes) {
    if (!initial.empty()) assign(initial);
  }
  /// Attaches to the String another process of the same user serves under `attach.name` (its
  /// name()). FileNotFoundError if none is served.
  explicit String(const Attach& attach)
      : core_(detail::ContainerKind::String, detail::element_type_tag<std::string>(), attach.name) {}
  String(const String&) = delete;
  String& operator=(const String&) = delete;

  /// A copy of the text.
  [[nodiscard]] std::string str() const {
    std::string out;
    core_.string_get([&](std::string_view v) { out.assign(v); });
    return out;
  }
  /// Replaces the text.
  void assign(std::string_view text) { core_.string_assign(text); }
  String& operator=(std::string_view text) {
    assign(text);
    return *this;
  }
  /// Appends to the text (one atomic step, unlike a str() + assign() pair).
  void append(std::string_view text) { core_.string_append(text); }
  String& operator+=(std::string_view text) {
    append(text);
    return *this;
  }
  void clear() { core_.clear(); }
  [[nodiscard]] std::size_t size() const { return core_.size(); }
  [[nodiscard]] bool empty() const { return size() == 0; }
  /// A name for `String(shared::Attach{name})` in any process of the same user: made on the first
  /// call, served while this object lives (not by copies in forked children).
  [[nodiscard]] std::string name() const { return core_.name(); }
  /// Room, use and recoveries (see detail::ContainerStats).
  [[nodiscard]] detail::ContainerStats stats() const { return core_.stats(); }

private:
  friend detail::HandleAccess;
  void encode_handle(std::string& out) const { core_.encode_handle(out); }
  String(detail::AttachTag, std::string_view& in) : core_(detail::ContainerKind::String, detail::element_type_tag<std::string>(), in) {}

  mutable detail::SharedContainer core_;
};

} // namespace procpool::shared

namespace procpool::dummy::shared {
/// The same type serves threads: its lock and memory work within one process as across many.
using String = procpool::shared::String;
} // namespace procpool::dummy::shared
