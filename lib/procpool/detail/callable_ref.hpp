#pragma once
/// @file detail/callable_ref.hpp
/// Names a function so that a fresh image of the same program (spawn, forkserver) can find it
/// again: the loaded object that contains it (main program or shared library) and its offset
/// from that object's load address. Survives ASLR and PIE.
#include <cstdint>
#include <string>

namespace procpool::detail {

struct CodeRef {
  std::string object;        ///< dl_iterate_phdr name: "" for the main program, else the library path
  std::uint64_t offset = 0;  ///< address minus the object's load bias

  template <class Archive>
  void serialize(Archive& ar) { ar(object, offset); }
};

/// The CodeRef of a code address in this process. Throws ProcessError if no loaded object holds it.
CodeRef code_ref_of(const void* address);

/// The address a CodeRef names in this process. Throws ProcessError if its object is not loaded.
const void* resolve_code_ref(const CodeRef& ref);

/// A function pointer as an untyped code address (function-to-object pointer casts are
/// conditionally supported; g++ on Linux supports them).
template <class F>
const void* code_address(F* fn) noexcept {
  return reinterpret_cast<const void*>(fn);
}

} // namespace procpool::detail
