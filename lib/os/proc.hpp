#pragma once
/// @file os/proc.hpp
/// System facts read from /proc and /sys: memory, cgroup limits, kernel limits, load. Each call
/// reads the files afresh (the facts change); every function is thread-safe.
#include <cstdint>
#include <optional>
#include <string>

namespace procpool::os {

/// The first word of a file as an unsigned number ("/proc/sys/kernel/pid_max"); nullopt when
/// the file is missing, the word is not a number ("max" in a cgroup v2 limit) or out of range.
[[nodiscard]] std::optional<std::uint64_t> read_number_file(const std::string& path);

/// Fields of /proc/meminfo, in bytes; each nullopt when absent.
struct MemInfo {
  std::optional<std::uint64_t> total;      ///< MemTotal
  std::optional<std::uint64_t> available;  ///< MemAvailable
  std::optional<std::uint64_t> swap_free;  ///< SwapFree
};
[[nodiscard]] MemInfo read_meminfo();

/// The room left in this process's cgroup for `controller`: `limit_file` less `usage_file`
/// (0 when over), from the first candidate directory that has the usage file: the v2 cgroup or
/// the v1 controller's, the process's own first, then the mount's root (what a container sees
/// of its own). nullopt when there is no limit ("max") or no such cgroup.
[[nodiscard]] std::optional<std::uint64_t> cgroup_room(const std::string& controller, const char* limit_file,
                                                       const char* usage_file);

/// Bytes this process may still commit: MemAvailable plus SwapFree, capped by the cgroup's
/// memory.max less memory.current when it has one. nullopt when /proc/meminfo is unreadable.
[[nodiscard]] std::optional<std::uint64_t> available_memory();

/// Kernel-wide limits; each nullopt when unreadable.
struct KernelLimits {
  std::optional<std::uint64_t> threads_max;    ///< /proc/sys/kernel/threads-max
  std::optional<std::uint64_t> pid_max;        ///< /proc/sys/kernel/pid_max
  std::optional<std::uint64_t> max_map_count;  ///< /proc/sys/vm/max_map_count
};
[[nodiscard]] KernelLimits read_kernel_limits();

/// Tasks runnable right now, machine-wide (the 4th field of /proc/loadavg, "runnable/total");
/// nullopt when unreadable. Counts the caller when it runs.
[[nodiscard]] std::optional<double> runnable_tasks();

} // namespace procpool::os
