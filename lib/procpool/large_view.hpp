#pragma once
/// @file large_view.hpp
/// procpool::LargeView<T>: a received std::vector / std::string of trivially copyable elements,
/// read where it lies instead of being copied into a new container (Queue::get_view,
/// Connection::recv_view). An out-of-band item (process backend: one over a quarter of the
/// ring) is viewed in place in its shared memfd, mapped read-only, and unmapped when the view
/// goes away: no copy at all on the receiving side. A small item, which came through the ring,
/// is held in a container of its own, as is the thread backend's value (moved, not copied).
#include <cstddef>
#include <optional>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "procpool/codec.hpp"
#include "procpool/detail/ring_large.hpp"
#include "procpool/errors.hpp"

namespace procpool {

namespace detail {
struct LargeViewAccess;
}

/// A received T (a ContiguousSendable container) as a read-only span of its elements. Move-only;
/// the memory stays valid (and mapped) as long as the view. Not thread-safe to move or destroy
/// concurrently with reads; reads from several threads are fine.
template <class T>
class LargeView {
  static_assert(ContiguousSendable<T>, "procpool: LargeView<T> views a std::vector or std::basic_string of trivially "
                                       "copyable elements");

public:
  using element_type = const typename detail::ContiguousOf<T>::element;
  using value_type = typename detail::ContiguousOf<T>::element;

  LargeView() = default;
  LargeView(LargeView&&) noexcept = default;
  LargeView& operator=(LargeView&&) noexcept = default;
  LargeView(const LargeView&) = delete;
  LargeView& operator=(const LargeView&) = delete;

  [[nodiscard]] std::span<element_type> span() const noexcept { return {data(), size()}; }
  operator std::span<element_type>() const noexcept { return span(); }  // NOLINT: a view is a span
  [[nodiscard]] element_type* data() const noexcept {
    if (owned_) return owned_->data();
    return reinterpret_cast<element_type*>(static_cast<const std::byte*>(mapped_.data()) + kElementsAt);
  }
  [[nodiscard]] std::size_t size() const noexcept { return owned_ ? owned_->size() : count_; }
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }
  [[nodiscard]] element_type* begin() const noexcept { return data(); }
  [[nodiscard]] element_type* end() const noexcept { return data() + size(); }
  [[nodiscard]] element_type& operator[](std::size_t i) const noexcept { return data()[i]; }
  /// Whether the elements are read in place from shared memory (an out-of-band item).
  [[nodiscard]] bool in_place() const noexcept { return !owned_ && mapped_.data() != nullptr; }
  /// A container of its own (one copy).
  [[nodiscard]] T to_value() const { return T(begin(), end()); }

private:
  friend struct detail::LargeViewAccess;
  // An out-of-band item's encoding: byte length, element count, elements (codec::encode_split).
  static constexpr std::size_t kElementsAt = 2 * sizeof(std::uint64_t);

  detail::MappedItem mapped_;
  std::size_t count_ = 0;
  std::optional<T> owned_;
};

namespace detail {
/// How the queues fill a LargeView.
struct LargeViewAccess {
  template <class T>
  static void hold(LargeView<T>& view, T&& value) {
    view.owned_.emplace(std::move(value));
  }
  /// Views the out-of-band encoding in `mapped` (checked as the codec checks it).
  template <class T>
  static void map(LargeView<T>& view, MappedItem&& mapped) {
    using E = typename ContiguousOf<T>::element;
    std::uint64_t size = 0;
    std::uint64_t count = 0;
    const std::string_view bytes = mapped.bytes();
    if (bytes.size() >= LargeView<T>::kElementsAt) {
      std::memcpy(&size, bytes.data(), sizeof size);
      std::memcpy(&count, bytes.data() + sizeof size, sizeof count);
    }
    if (bytes.size() < LargeView<T>::kElementsAt || size != bytes.size() - sizeof size ||
        count > (size - sizeof count) / sizeof(E) || size - sizeof count != count * sizeof(E))
      throw SerializationError("procpool: undecodable large item: " + std::to_string(bytes.size()) +
                               " bytes do not hold the elements they announce");
    view.mapped_ = std::move(mapped);
    view.count_ = static_cast<std::size_t>(count);
  }
};
} // namespace detail

} // namespace procpool
