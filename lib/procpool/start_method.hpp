#pragma once
/// @file start_method.hpp
/// How child processes are started (Python's start methods) and procpool::init().
#include <string>
#include <string_view>
#include <vector>

namespace procpool {

/// Python's start methods.
/// - Fork: the child is a copy of the parent; any callable works, captures included.
/// - Spawn: the child is a fresh run of the same binary (os::spawn, clone + exec, of /proc/self/exe, descriptors 0-2 only); needs
///   procpool::init(argc, argv) first in main, a function or captureless lambda, Sendable args.
/// - Forkserver: a clean single-threaded server, started once, forks the children; same rules as
///   Spawn, but a parent that already runs threads never forks itself.
enum class StartMethod { Fork, Spawn, Forkserver };

/// Python's name of a method: "fork", "spawn", "forkserver".
std::string_view to_string(StartMethod method) noexcept;

/// Parses "fork" | "spawn" | "forkserver". Throws ValueError naming the valid choices.
StartMethod start_method_from_string(std::string_view name);

/// Sets the process-wide default start method. Thread-safe.
void set_start_method(StartMethod method);
/// Same, with Python's strings. Throws ValueError on an unknown name.
void set_start_method(std::string_view name);
/// The process-wide default start method (initially Fork, or $PROCPOOL_START_METHOD, read on first
/// use; in a spawn or forkserver child, the child's own method). Throws ValueError naming the
/// valid methods while $PROCPOOL_START_METHOD is invalid and set_start_method() was not called.
/// Thread-safe.
[[nodiscard]] StartMethod get_start_method();
/// All supported start methods, as Python's get_all_start_methods().
[[nodiscard]] std::vector<std::string> get_all_start_methods();

/// Call first in main(), like Python's `if __name__ == "__main__":` guard. In a spawned child
/// or the forkserver, it runs the child's work and never returns; in the program itself it
/// records argv so that spawn can re-run the binary. Child mode is entered only when procpool
/// in the parent started this process (same executable, real parent, a sealed payload the parent
/// holds, never setuid/setgid): `--procpool-spawn` otherwise prints why and exits with status 2,
/// a stray $PROCPOOL_FORKSERVER_FD is removed with a warning. Not thread-safe: call before any thread.
void init(int argc, char** argv);

/// Whether init() has run in this process.
[[nodiscard]] bool initialized() noexcept;

} // namespace procpool
