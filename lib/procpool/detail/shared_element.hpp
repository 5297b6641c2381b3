#pragma once
/// @file detail/shared_element.hpp
/// Which types a shared container (procpool::shared::Dict, List) holds, and how each is turned
/// into the bytes kept in shared memory and back: the containers store bytes, so that one
/// implementation (lib/shared_containers.cpp) serves every element type and the public headers
/// need no Boost.
#include <concepts>
#include <cstdint>
#include <typeinfo>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace procpool::detail {

template <class T>
inline constexpr bool kIsStdVector = false;
template <class U, class A>
inline constexpr bool kIsStdVector<std::vector<U, A>> = true;

/// A plain value: its bytes are the value (no heap pointers, which mean nothing in another process).
template <class T>
concept SharedPlain = std::is_trivially_copyable_v<T> && !std::is_pointer_v<T> && !std::is_member_pointer_v<T>;

/// What a container element may be: a plain value, a std::string, or a std::vector of plain values.
template <class T>
concept SharedElement = SharedPlain<T> || std::is_same_v<T, std::string> ||
                        (kIsStdVector<T> && SharedPlain<typename T::value_type> &&
                         std::is_same_v<T, std::vector<typename T::value_type>>);

/// What a Dict key may be: a SharedElement whose bytes are equal exactly when the values are
/// (no padding, no float: 0.0 == -0.0 and NaN != NaN would break the lookup by bytes).
template <class T>
concept SharedKey =
    std::is_same_v<T, std::string> ||
    (kIsStdVector<T> && SharedElement<T> && std::has_unique_object_representations_v<typename T::value_type>) ||
    (SharedPlain<T> && std::has_unique_object_representations_v<T>);

inline constexpr const char* kElementRule =
    "procpool::shared containers hold trivially copyable types (ints, doubles, enums, plain structs, std::array "
    "of them), std::string and std::vector of trivially copyable types: other types own heap memory that another "
    "process cannot see. Convert the value first (e.g. to a std::string).";

/// T's bytes as stored, and T back from them. `view` is valid while `value` lives.
template <SharedElement T>
struct ElementBytes {
  [[nodiscard]] static std::string_view view(const T& value) noexcept {
    if constexpr (std::is_same_v<T, std::string>) {
      return value;
    } else if constexpr (kIsStdVector<T>) {
      return {reinterpret_cast<const char*>(value.data()), value.size() * sizeof(typename T::value_type)};
    } else {
      return {reinterpret_cast<const char*>(&value), sizeof(T)};
    }
  }
  [[nodiscard]] static T from(std::string_view bytes) {
    if constexpr (std::is_same_v<T, std::string>) {
      return std::string(bytes);
    } else if constexpr (kIsStdVector<T>) {
      T out(bytes.size() / sizeof(typename T::value_type));
      if (!bytes.empty()) std::memcpy(out.data(), bytes.data(), out.size() * sizeof(typename T::value_type));
      return out;
    } else {
      // Copying the bytes into suitably aligned storage creates the T (trivially copyable).
      alignas(T) unsigned char storage[sizeof(T)];
      std::memcpy(storage, bytes.data(), sizeof(T));
      return *std::launder(reinterpret_cast<T*>(storage));
    }
  }
};

/// The parameter a lookup takes: a std::string_view for string keys (no std::string built to
/// look one up), a const reference otherwise.
template <class K>
using KeyArg = std::conditional_t<std::is_same_v<K, std::string>, std::string_view, const K&>;

template <class K>
[[nodiscard]] std::string_view key_view(KeyArg<K> key) noexcept {
  if constexpr (std::is_same_v<K, std::string>)
    return key;
  else
    return ElementBytes<K>::view(key);
}

/// `c[i]` of a shared container, as Python's `c[i]` and `c[i] = v`: reads through `Read` (a const
/// member of Owner: Dict::at, List::get), assigns through `Owner::set`. Each is one locked operation.
template <class Owner, class Index, class T, T (Owner::*Read)(Index) const>
class ItemProxy {
public:
  operator T() const { return (owner_.*Read)(index_); }  // NOLINT(google-explicit-constructor)
  ItemProxy& operator=(const T& value) {
    owner_.set(index_, value);
    return *this;
  }

private:
  friend Owner;
  ItemProxy(Owner& owner, Index index) : owner_(owner), index_(index) {}
  Owner& owner_;
  Index index_;
};

/// A fingerprint of a container's element types, kept in its segment, so that attaching by name
/// with other types is refused instead of misreading the bytes.
template <class... Ts>
[[nodiscard]] std::uint64_t element_type_tag() noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a over the types' names
  for (const char* name : {typeid(Ts).name()...}) {
    for (const char* c = name; *c != '\0'; ++c) h = (h ^ static_cast<unsigned char>(*c)) * 0x100000001b3ULL;
    h = (h ^ '|') * 0x100000001b3ULL;
  }
  return h;
}

} // namespace procpool::detail
