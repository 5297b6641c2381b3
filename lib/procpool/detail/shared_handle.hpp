#pragma once
/// @file detail/shared_handle.hpp
/// How a shared object (Lock, Value, Queue, Connection...) reaches a spawned or forkserver
/// child: as a handle to its shared memory, to which the child attaches (see
/// detail/arg_transfer.hpp; a forked child simply inherits the mapping). One marker and one
/// mixin for every object; each object says only how its own state is written and attached.
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "procpool/detail/shm.hpp"
#include "procpool/errors.hpp"

namespace procpool::detail {

/// Selects an object's "attach to existing shared state" constructor.
struct AttachTag {
  explicit AttachTag() = default;
};

/// The one door to an object's private hand-off members: an object befriends it
/// (`friend detail::HandleAccess;`) instead of exposing them.
struct HandleAccess {
  template <class T>
  static void encode(const T& object, std::string& out) {
    object.encode_handle(out);
  }
  template <class T>
  static std::unique_ptr<T> attach(std::string_view& in) {
    return std::unique_ptr<T>(new T(AttachTag{}, in));
  }
};

/// The mixin of every shared object, e.g. `class BasicLock : public detail::SharedHandle<BasicLock<Backend>, Backend>`.
/// Process backend: it carries the marker `procpool_shared_type`, which makes Process keep the
/// object by reference (arg_transfer.hpp's SharedHandleType), and the two hand-off members
/// Process calls. Thread backend: nothing, so such an object cannot be passed to a Process at
/// all (its state is on the heap and its futexes are private).
/// Derived provides, privately, with `friend detail::HandleAccess;`:
///  - `void encode_handle(std::string& out) const`: appends what a child needs to attach;
///  - `Derived(detail::AttachTag, std::string_view& in)`: attaches, consuming its part of `in`.
template <class Derived, class Backend, bool = Backend::interprocess>
class SharedHandle {};

template <class Derived, class Backend>
class SharedHandle<Derived, Backend, true> {
public:
  using procpool_shared_type = void;

  /// Spawn hand-off: appends what a spawned child needs to attach to this object. Thread-safe.
  void procpool_encode_handle(std::string& out) const {
    HandleAccess::encode(static_cast<const Derived&>(*this), out);
  }
  /// Spawn hand-off: an object attached to the shared state described at the front of `in`
  /// (consumed). Throws ProcessError when the creator is gone, SerializationError when `in` is
  /// truncated.
  static std::unique_ptr<Derived> procpool_attach(std::string_view& in) { return HandleAccess::attach<Derived>(in); }
};

/// The handle of one shared segment, as the segment-backed objects write it.
inline void encode_segment_handle(std::string& out, const SegmentHandle& handle) {
  out.append(reinterpret_cast<const char*>(&handle), sizeof handle);
}

inline SegmentHandle decode_segment_handle(std::string_view& in) {
  if (in.size() < sizeof(SegmentHandle))
    throw SerializationError("procpool: truncated shared-object handle: need " + std::to_string(sizeof(SegmentHandle)) +
                             " bytes, have " + std::to_string(in.size()));
  SegmentHandle handle;
  std::memcpy(&handle, in.data(), sizeof handle);
  in.remove_prefix(sizeof handle);
  return handle;
}

} // namespace procpool::detail
