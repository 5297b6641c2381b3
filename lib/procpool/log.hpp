#pragma once
/// @file log.hpp
/// procpool's logger: spdlog, silent unless PROCPOOL_LOG names a level (trace, debug, info,
/// warn, error, critical), every line carrying the process name, pid and thread name, as
/// Python's "%(processName)s %(threadName)s". Rebuilt in a child after fork().
#include <memory>
#include <string_view>

#include <spdlog/spdlog.h>

namespace procpool {

/// The process-wide procpool logger. Thread-safe. Do not keep the returned reference across
/// fork(): the child gets a fresh logger (spdlog's mutexes do not survive fork).
spdlog::logger& logger();

/// Sets the logger's level (e.g. spdlog::level::debug), like Python's log_to_stderr(level).
/// Thread-safe.
void set_log_level(spdlog::level::level_enum level);

/// Sets the logger's pattern. Besides spdlog's flags, %N is the process name and %k the
/// thread name (both accept padding, e.g. %-10k). Thread-safe.
void set_log_pattern(std::string_view pattern);

namespace detail {
/// The calling process's name ("MainProcess", "Process-1", ...). Not thread-safe to set.
std::string& process_name_slot();
/// The calling thread's name slot; empty means "not named by procpool::threading".
std::string& thread_name_slot();
/// The calling thread's display name: its slot, or MainThread / Dummy-<tid>.
std::string current_thread_display_name();
/// Re-creates the logger (called in a child right after fork).
void rebuild_logger_after_fork();
} // namespace detail

} // namespace procpool
