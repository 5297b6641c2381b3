#pragma once
/// @file detail/callable_ref.hpp
/// Names a function so that a fresh image of the same program (spawn, forkserver) can find it
/// again: the loaded object that contains it (main program or shared library), that object's
/// ELF build-id, and the function's offset from the object's load address. Survives ASLR and
/// PIE; the build-id catches an object replaced on disk since the parent loaded it.
#include <cstdint>
#include <string>
#include <vector>

namespace procpool::detail {

struct CodeRef {
  std::string object;        ///< dl_iterate_phdr name: "" for the main program, else the library path
  std::uint64_t offset = 0;  ///< address minus the object's load bias; 0 names the object's base
  std::string build_id{};    ///< NT_GNU_BUILD_ID as lowercase hex; "" when unknown (not checked)

  template <class Archive>
  void serialize(Archive& ar) { ar(object, offset, build_id); }
};

/// A loaded object and its build-id, as a parent sends them to a fresh child.
struct LoadedObject {
  std::string name;      ///< dl_iterate_phdr name
  std::string build_id;  ///< lowercase hex; "" when the object has none

  template <class Archive>
  void serialize(Archive& ar) { ar(name, build_id); }
};

/// The CodeRef of a code address in this process. Throws ProcessError if no loaded object holds it.
CodeRef code_ref_of(const void* address);

/// The address a CodeRef names in this process. Throws ProcessError if its object is not
/// loaded, has another build-id than a non-empty recorded one (the message names the object
/// and both ids), or if a non-zero offset is not inside one of its executable segments.
/// Thread-safe.
const void* resolve_code_ref(const CodeRef& ref);

/// The build-id (lowercase hex) of the loaded object named like CodeRef::object; "" when it
/// has none. Throws ProcessError when no such object is loaded.
std::string loaded_build_id(const std::string& object);

/// Every object loaded in this process with its build-id.
std::vector<LoadedObject> loaded_objects();

/// Throws ProcessError, naming the object and both build-ids, when an object loaded here under
/// one of `parents`' names has another build-id (replaced on disk since the parent loaded it):
/// code found by offset in it (spawn targets, pool tasks) would be other code.
void check_same_objects(const std::vector<LoadedObject>& parents);

/// Cluster pool workers run only the task entries (invokers) that this program instantiated for a
/// cluster pool: a task from the broker cannot name other code of the program as its entry.
/// Registered before main() (detail::ClusterInvoker in pool_wire.hpp), read by workers. Thread-safe.
bool allow_cluster_invoker(const void* invoker) noexcept;
[[nodiscard]] bool cluster_invoker_allowed(const void* invoker) noexcept;

/// A function pointer as an untyped code address (function-to-object pointer casts are
/// conditionally supported; g++ on Linux supports them).
template <class F>
const void* code_address(F* fn) noexcept {
  return reinterpret_cast<const void*>(fn);
}

} // namespace procpool::detail
