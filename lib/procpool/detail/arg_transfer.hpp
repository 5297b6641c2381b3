#pragma once
/// @file detail/arg_transfer.hpp
/// How a Process target and its arguments reach the child.
/// - fork: the callable and argument copies are captured in a closure (anything goes).
/// - spawn / forkserver: the child is a fresh image, so the target must be a function or a
///   captureless lambda (named by a CodeRef) and every argument must be Sendable, or a shared
///   object (Lock, Queue, Value...) that travels as a handle the child attaches to.
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "procpool/codec.hpp"
#include "procpool/detail/callable_ref.hpp"

namespace procpool::detail {

/// A shared object: it lives in shared memory and is passed by reference. Its mixin,
/// detail::SharedHandle (detail/shared_handle.hpp), gives it the marker and
/// `void procpool_encode_handle(std::string&) const` and
/// `static std::unique_ptr<T> procpool_attach(std::string_view&)`.
template <class T>
concept SharedHandleType = requires { typename T::procpool_shared_type; };

template <class T>
struct unwrap_reference_wrapper {
  using type = T;
};
template <class T>
struct unwrap_reference_wrapper<std::reference_wrapper<T>> {
  using type = T;
};

/// What a Process keeps of an argument: shared objects by reference, the rest by value.
template <class A>
using StoredArg = std::conditional_t<SharedHandleType<std::remove_cvref_t<A>>,
                                     std::reference_wrapper<std::remove_reference_t<A>>, std::decay_t<A>>;

/// The stored argument as the target sees it.
template <class S>
decltype(auto) as_target_arg(S& stored) {
  if constexpr (requires { stored.get(); typename S::type; }) return stored.get();  // reference_wrapper
  else return (stored);
}

/// Can this stored argument travel to a fresh image?
template <class S>
constexpr bool is_portable_arg() {
  using Plain = std::remove_cv_t<typename unwrap_reference_wrapper<S>::type>;
  if constexpr (SharedHandleType<Plain>) return true;
  else if constexpr (!std::is_same_v<Plain, S>) return false;  // std::ref to a plain object: fork only
  else return Sendable<S>;
}

template <class S>
void encode_portable_arg(std::string& out, const S& stored) {
  using Plain = std::remove_cv_t<typename unwrap_reference_wrapper<S>::type>;
  if constexpr (SharedHandleType<Plain>) static_cast<const Plain&>(stored).procpool_encode_handle(out);
  else codec::encode_to(out, stored);
}

/// Holds a decoded argument in the child for the duration of the call.
template <class S>
struct PortableArgHolder {
  using Plain = std::remove_cv_t<typename unwrap_reference_wrapper<S>::type>;
  static constexpr bool shared = SharedHandleType<Plain>;
  std::conditional_t<shared, std::unique_ptr<Plain>, S> value;

  explicit PortableArgHolder(std::string_view& in) {
    if constexpr (shared) value = Plain::procpool_attach(in);
    else value = codec::decode_from<S>(in);
  }
  decltype(auto) get() {
    if constexpr (shared) return (*value);
    else return (value);
  }
};

/// The untyped entry point a child calls: decodes the arguments and calls the target.
using PortableInvoker = void (*)(const void* function, std::string_view args);

template <class Fn>
constexpr bool is_portable_callable() {
  using D = std::decay_t<Fn>;
  if constexpr (std::is_pointer_v<D> && std::is_function_v<std::remove_pointer_t<D>>) return true;
  else return std::is_empty_v<D> && std::is_default_constructible_v<D>;  // captureless lambda / functor
}

template <class Fn, class... S>
void invoke_portable(const void* function, std::string_view args) {
  using D = std::decay_t<Fn>;
  // Braced initialisation evaluates left to right: arguments decode in order.
  std::tuple<PortableArgHolder<S>...> holders{PortableArgHolder<S>(args)...};
  if (!args.empty()) throw SerializationError("procpool: trailing bytes after the target's arguments");
  std::apply(
      [&](auto&... h) {
        if constexpr (std::is_pointer_v<D>) std::invoke(reinterpret_cast<D>(const_cast<void*>(function)), h.get()...);
        else std::invoke(D{}, h.get()...);
      },
      holders);
}

/// A target that a fresh image can run: where the invoker and the function are, and the
/// encoded arguments.
struct PortableTarget {
  CodeRef invoker;
  CodeRef function;  ///< empty offset for captureless lambdas (the invoker builds one)
  bool has_function = false;
  std::string args;
  /// Set by Process: encodes `args` when the target is serialised for a child, that is only
  /// when a spawn or forkserver child starts. A shared object's handle may issue a hand-off
  /// that the child must acknowledge (a Connection's, see detail/end_tokens.hpp), which must
  /// not happen for a forked child or a Process that never starts.
  std::function<void(std::string&)> encode_args;

  template <class Archive>
  void serialize(Archive& ar) {
    if constexpr (Archive::is_saving::value) {
      if (encode_args) {
        args.clear();
        encode_args(args);
      }
    }
    ar(invoker, function, has_function, args);
  }
};

/// Builds a PortableTarget when `Fn` and every stored argument allow it; else returns false.
/// `lazy_args`: the arguments are encoded when the target is serialised (see encode_args);
/// `args` must then outlive every serialisation.
template <class Fn, class... S>
bool make_portable_target(PortableTarget& out, const Fn& fn, const std::tuple<S...>& args, bool lazy_args = false) {
  if constexpr (is_portable_callable<Fn>() && (is_portable_arg<S>() && ...)) {
    out.invoker = code_ref_of(code_address(&invoke_portable<Fn, S...>));
    if constexpr (std::is_pointer_v<std::decay_t<Fn>>) {
      out.function = code_ref_of(code_address(fn));
      out.has_function = true;
    }
    out.args.clear();
    if (lazy_args) {
      out.encode_args = [&args](std::string& to) {
        std::apply([&](const auto&... a) { (encode_portable_arg(to, a), ...); }, args);
      };
    } else {
      std::apply([&](const auto&... a) { (encode_portable_arg(out.args, a), ...); }, args);
    }
    return true;
  } else {
    (void)out;
    (void)fn;
    (void)args;
    (void)lazy_args;
    return false;
  }
}

} // namespace procpool::detail
