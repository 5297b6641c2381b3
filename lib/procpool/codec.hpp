#pragma once
/// @file codec.hpp
/// How values travel between processes: the argument codec of spawn/forkserver, reused by
/// the queues and the pool. Trivially copyable types are copied as bytes; strings, standard
/// containers, tuples, optionals, variants and user types with a cereal `serialize` member
/// go through cereal's binary archive. Anything else is a compile-time error.
#include <cstdint>
#include <cstring>
#include <new>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>

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

/// Sent through cereal's binary archive.
template <class T>
concept CerealSendable = !TriviallySendable<T> && !std::is_pointer_v<T> &&
                         cereal::traits::is_output_serializable<T, cereal::BinaryOutputArchive>::value &&
                         cereal::traits::is_input_serializable<T, cereal::BinaryInputArchive>::value &&
                         std::is_default_constructible_v<T>;

/// A type that can be sent to another process. (Pointers nested inside a container or
/// struct cannot be detected: they arrive as meaningless addresses.)
template <class T>
concept Sendable = TriviallySendable<std::remove_cvref_t<T>> || CerealSendable<std::remove_cvref_t<T>>;

namespace codec {

/// Fails to compile with a message naming what to do, for a type that is not Sendable.
template <class T>
constexpr void require_sendable() {
  static_assert(Sendable<T>,
                "procpool: this type cannot be sent to another process. Use a trivially copyable type "
                "(no pointers inside), a std::string / standard container / tuple / optional of such, "
                "or give your type a cereal `template <class A> void serialize(A&)` member.");
}

/// Appends the encoding of `value` to `out`. Thread-safe (no shared state).
template <class T>
void encode_to(std::string& out, const T& value) {
  require_sendable<T>();
  if constexpr (TriviallySendable<T>) {
    out.append(reinterpret_cast<const char*>(&value), sizeof(T));
  } else {
    std::ostringstream os(std::ios::binary);
    {
      cereal::BinaryOutputArchive archive(os);
      archive(value);
    }
    const std::string body = std::move(os).str();
    const std::uint64_t size = body.size();
    out.append(reinterpret_cast<const char*>(&size), sizeof size);
    out.append(body);
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
    try {
      std::istringstream is(std::string(in.substr(0, size)), std::ios::binary);
      cereal::BinaryInputArchive archive(is);
      archive(value);
    } catch (const cereal::Exception& e) {
      throw SerializationError(std::string("procpool: undecodable message: ") + e.what());
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
