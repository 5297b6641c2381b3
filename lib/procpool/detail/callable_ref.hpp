#pragma once
/// @file detail/callable_ref.hpp
/// Names a function so that a fresh image of the same program (spawn, forkserver) can find it
/// again: the loaded object that contains it (main program or shared library), that object's
/// ELF build-id, and the function's offset from the object's load address. Survives ASLR and
/// PIE; the build-id catches an object replaced on disk since the parent loaded it.
#include <cstdint>
#include <string>

namespace procpool::detail {

struct CodeRef {
  std::string object;        ///< dl_iterate_phdr name: "" for the main program, else the library path
  std::string build_id;      ///< NT_GNU_BUILD_ID as lowercase hex; "" when the object has none
  std::uint64_t offset = 0;  ///< address minus the object's load bias

  template <class Archive>
  void serialize(Archive& ar) { ar(object, build_id, offset); }
};

/// The CodeRef of a code address in this process. Throws ProcessError if no loaded object holds it.
CodeRef code_ref_of(const void* address);

/// The address a CodeRef names in this process. Throws ProcessError if its object is not
/// loaded, has another build-id than the one recorded (naming both), or if the offset is not
/// inside one of its executable segments. Thread-safe.
const void* resolve_code_ref(const CodeRef& ref);

/// The build-id (lowercase hex) of the loaded object named like CodeRef::object; "" when it
/// has none. Throws ProcessError when no such object is loaded.
std::string loaded_build_id(const std::string& object);

/// A function pointer as an untyped code address (function-to-object pointer casts are
/// conditionally supported; g++ on Linux supports them).
template <class F>
const void* code_address(F* fn) noexcept {
  return reinterpret_cast<const void*>(fn);
}

} // namespace procpool::detail
