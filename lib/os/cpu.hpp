#pragma once
/// @file os/cpu.hpp
/// How many CPUs this process may run on.
namespace procpool::os {

/// The CPUs in this process's affinity mask (what `taskset`, cgroups' cpusets and container
/// runtimes leave it), at least 1; the online count when the mask cannot be read.
/// Thread-safe.
[[nodiscard]] int cpu_count() noexcept;

} // namespace procpool::os
