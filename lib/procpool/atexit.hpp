#pragma once
/// @file atexit.hpp
/// Python's atexit.register for programs with child processes.
///
/// A procpool child ends with _exit() after its target (a forked child must not run the
/// parent's exit handlers and static destructors a second time), so a plain std::atexit()
/// handler registered in a forked child never runs. A handler registered here belongs to the
/// process that registered it and runs when that process ends normally:
/// - the main program: at exit() / return from main(), before the std::atexit handlers
///   registered earlier;
/// - a procpool child (any start method): after its target returned or threw and its
///   non-daemon threads were joined, before it waits for its own children.
/// Handlers registered in a parent before a fork are not run by the forked child (CPython's
/// gh-83856 behaviour). Handlers run last-registered first; one that throws is reported on
/// stderr and the others still run. Not run on a signal, _exit() or abort().
#include <functional>

namespace procpool {

/// Registers `handler` to run when the calling process ends normally (see above). Thread-safe.
void atexit_register(std::function<void()> handler);

namespace detail {
/// Runs (and forgets) the calling process's registered handlers, last first. Thread-safe;
/// called by a child's exit path and by the main program's exit hook.
void run_atexit_handlers() noexcept;
} // namespace detail

} // namespace procpool
