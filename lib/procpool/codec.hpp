#pragma once
/// @file codec.hpp
/// How values travel between processes: the argument codec of spawn/forkserver, reused by
/// the queues and the pool. Trivially copyable types are copied as bytes; strings, standard
/// containers, tuples, optionals, variants and user types with a cereal `serialize` member
/// go through cereal's binary archive. Anything else is a compile-time error.
#include <cstdint>
#include <cstring>
#include <new>
#include <istream>
#include <ostream>
#include <streambuf>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <cereal/archives/binary.hpp>
#include <cereal/types/array.hpp>
#include <cereal/types/deque.hpp>
#include <cereal/types/list.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/set.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/unordered_map.hpp>
#include <cereal/types/unordered_set.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/variant.hpp>
#include <cereal/types/vector.hpp>

#include "procpool/errors.hpp"

namespace procpool {

/// Sent as raw bytes: trivially copyable and not a pointer (an address means nothing in
/// another process).
template <class T>
concept TriviallySendable = std::is_trivially_copyable_v<T> && !std::is_pointer_v<T> &&
                            !std::is_member_pointer_v<T> && !std::is_reference_v<T>;

namespace detail {
template <class T>
struct ContiguousOf : std::false_type {};
template <class E, class A>
struct ContiguousOf<std::vector<E, A>> : std::bool_constant<TriviallySendable<E> && !std::is_same_v<E, bool>> {
  using element = E;
};
template <class C, class Traits, class A>
struct ContiguousOf<std::basic_string<C, Traits, A>> : std::bool_constant<TriviallySendable<C>> {
  using element = C;
};
} // namespace detail

/// A std::vector or std::basic_string of trivially copyable elements: sent as its element count
/// and its bytes, written and read with one copy each (the bytes cereal's binary archive writes
/// for arithmetic elements, without its stream).
template <class T>
concept ContiguousSendable = detail::ContiguousOf<T>::value;

/// Sent through cereal's binary archive.
template <class T>
concept CerealSendable = !TriviallySendable<T> && !ContiguousSendable<T> && !std::is_pointer_v<T> &&
                         cereal::traits::is_output_serializable<T, cereal::BinaryOutputArchive>::value &&
                         cereal::traits::is_input_serializable<T, cereal::BinaryInputArchive>::value &&
                         std::is_default_constructible_v<T>;

/// A type that can be sent to another process. (Pointers nested inside a container or
/// struct cannot be detected: they arrive as meaningless addresses.)
template <class T>
concept Sendable = TriviallySendable<std::remove_cvref_t<T>> || ContiguousSendable<std::remove_cvref_t<T>> ||
                   CerealSendable<std::remove_cvref_t<T>>;

namespace codec {
namespace detail {
/// cereal's archives write to and read from these instead of string streams: straight into the
/// output string, straight from the input bytes (no intermediate copy either way).
class AppendBuffer final : public std::streambuf {
public:
  explicit AppendBuffer(std::string& out) : out_(out) {}

protected:
  std::streamsize xsputn(const char* data, std::streamsize n) override {
    out_.append(data, static_cast<std::size_t>(n));
    return n;
  }
  int_type overflow(int_type ch) override {
    if (!traits_type::eq_int_type(ch, traits_type::eof())) out_.push_back(traits_type::to_char_type(ch));
    return traits_type::not_eof(ch);
  }

private:
  std::string& out_;
};
class ViewBuffer final : public std::streambuf {
public:
  explicit ViewBuffer(std::string_view in) {
    char* begin = const_cast<char*>(in.data());  // read only: the get area is never written
    setg(begin, begin, begin + in.size());
  }
};
} // namespace detail

/// Fails to compile with a message naming what to do, for a type that is not Sendable.
template <class T>
constexpr void require_sendable() {
  static_assert(Sendable<T>,
                "procpool: this type cannot be sent to another process. Use a trivially copyable type "
                "(no pointers inside), a std::string / standard container / tuple / optional of such, "
                "or give your type a cereal `template <class A> void serialize(A&)` member.");
}

/// A ContiguousSendable value's encoding in two parts, so that a large one can be copied
/// straight from the value to where it goes: `prefix` gets the length and the element count,
/// the returned view is the elements themselves (valid while `value` is unchanged).
template <ContiguousSendable T>
std::string_view encode_split(std::string& prefix, const T& value) {
  using E = typename procpool::detail::ContiguousOf<T>::element;
  const std::uint64_t count = value.size();
  const std::uint64_t size = sizeof count + count * sizeof(E);
  prefix.append(reinterpret_cast<const char*>(&size), sizeof size);
  prefix.append(reinterpret_cast<const char*>(&count), sizeof count);
  return {reinterpret_cast<const char*>(value.data()), count * sizeof(E)};
}

/// Appends the encoding of `value` to `out`. Thread-safe (no shared state).
template <class T>
void encode_to(std::string& out, const T& value) {
  require_sendable<T>();
  if constexpr (TriviallySendable<T>) {
    out.append(reinterpret_cast<const char*>(&value), sizeof(T));
  } else if constexpr (ContiguousSendable<T>) {
    out.append(encode_split(out, value));
  } else {
    // The length prefix first, filled in once the archive has written the body behind it.
    const std::size_t at = out.size();
    out.append(sizeof(std::uint64_t), '\0');
    {
      detail::AppendBuffer buffer(out);
      std::ostream os(&buffer);
      cereal::BinaryOutputArchive archive(os);
      archive(value);
    }
    const std::uint64_t size = out.size() - at - sizeof size;
    std::memcpy(out.data() + at, &size, sizeof size);
  }
}

/// The encoding of `value` as a new string.
template <class T>
[[nodiscard]] std::string encode(const T& value) {
  std::string out;
  encode_to(out, value);
  return out;
}

/// Decodes one T from the front of `in` and advances `in` past it.
/// Throws SerializationError on truncated or undecodable bytes.
template <class T>
[[nodiscard]] T decode_from(std::string_view& in) {
  static_assert(!std::is_const_v<T> && !std::is_reference_v<T>, "decode a plain (non-const, non-reference) type");
  require_sendable<T>();
  if constexpr (TriviallySendable<T>) {
    if (in.size() < sizeof(T))
      throw SerializationError("procpool: truncated message: need " + std::to_string(sizeof(T)) +
                               " bytes, have " + std::to_string(in.size()));
    alignas(T) unsigned char storage[sizeof(T)];
    std::memcpy(storage, in.data(), sizeof(T));
    in.remove_prefix(sizeof(T));
    return *std::launder(reinterpret_cast<T*>(storage));
  } else {
    std::uint64_t size = 0;
    if (in.size() < sizeof size) throw SerializationError("procpool: truncated message: missing length prefix");
    std::memcpy(&size, in.data(), sizeof size);
    in.remove_prefix(sizeof size);
    if (in.size() < size)
      throw SerializationError("procpool: truncated message: need " + std::to_string(size) + " bytes, have " +
                               std::to_string(in.size()));
    T value{};
    if constexpr (ContiguousSendable<T>) {
      using E = typename procpool::detail::ContiguousOf<T>::element;
      std::uint64_t count = 0;
      if (size < sizeof count) throw SerializationError("procpool: undecodable message: missing element count");
      std::memcpy(&count, in.data(), sizeof count);
      if (count > (size - sizeof count) / sizeof(E) || size - sizeof count != count * sizeof(E))
        throw SerializationError("procpool: undecodable message: " + std::to_string(count) + " elements of " +
                                 std::to_string(sizeof(E)) + " bytes in " + std::to_string(size - sizeof count));
      const char* elements = in.data() + sizeof count;
      if (reinterpret_cast<std::uintptr_t>(elements) % alignof(E) == 0) {
        // One pass: no zero-filling before the copy.
        const E* first = reinterpret_cast<const E*>(elements);
        value.assign(first, first + count);
      } else {
        value.resize(count);
        if (count != 0) std::memcpy(static_cast<void*>(value.data()), elements, count * sizeof(E));
      }
    } else {
      try {
        detail::ViewBuffer buffer(in.substr(0, size));
        std::istream is(&buffer);
        cereal::BinaryInputArchive archive(is);
        archive(value);
      } catch (const cereal::Exception& e) {
        throw SerializationError(std::string("procpool: undecodable message: ") + e.what());
      }
    }
    in.remove_prefix(size);
    return value;
  }
}

/// Decodes a whole message holding exactly one T.
template <class T>
[[nodiscard]] T decode(std::string_view in) {
  T value = decode_from<T>(in);
  if (!in.empty())
    throw SerializationError("procpool: " + std::to_string(in.size()) + " unexpected trailing bytes in message");
  return value;
}

} // namespace codec
} // namespace procpool
