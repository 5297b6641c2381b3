#pragma once
/// @file detail/fd_server.hpp
/// Hands a descriptor that /proc/<pid>/fd cannot open (a socket) to a spawned or forkserver
/// child: the creating process serves it under a private name, on the same abstract-socket
/// server as SharedMemory's names (shared_memory.cpp: one thread, started on first use, answers
/// only processes of the same user). The name dies with the server's process.
#include <string>

namespace procpool::detail {

/// Serves a duplicate of `fd` under a fresh name, which it returns. Throws ProcessError.
/// Thread-safe.
std::string serve_descriptor(int fd);
/// Stops serving `name` if this process serves it. Thread-safe.
void stop_serving_descriptor(const std::string& name) noexcept;
/// A close-on-exec descriptor for the one served under `name` by another process. Throws
/// ProcessError when nobody serves it (its creator ended, or stopped serving it). Thread-safe.
int fetch_descriptor(const std::string& name);

} // namespace procpool::detail
