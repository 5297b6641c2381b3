// The out-of-line parts of the synchronisation primitives: the memory check, and the warning
// when a lock is taken over from a dead owner.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include <fcntl.h>
#include <unistd.h>

#include "procpool/detail/robust_mutex.hpp"
#include "procpool/detail/sync_support.hpp"
#include "procpool/log.hpp"

namespace procpool::detail {

namespace {

/// "Key:   123 kB" from /proc/meminfo, in bytes; nullopt if absent.
std::optional<std::uint64_t> meminfo_bytes(const std::string& text, const char* key) {
  const std::size_t at = text.find(key);
  if (at == std::string::npos) return std::nullopt;
  return std::strtoull(text.c_str() + at + std::strlen(key), nullptr, 10) * 1024;
}

std::string read_small_file(const char* path) {
  std::string out;
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

/// Bytes this process may still commit: the machine's available memory plus free swap,
/// capped by the cgroup v2 memory limit when one is set. nullopt when unknown.
std::optional<std::uint64_t> available_memory() {
  const std::string meminfo = read_small_file("/proc/meminfo");
  const auto avail = meminfo_bytes(meminfo, "MemAvailable:");
  if (!avail) return std::nullopt;
  std::uint64_t total = *avail + meminfo_bytes(meminfo, "SwapFree:").value_or(0);
  // cgroup v2: "0::/path" in /proc/self/cgroup; memory.max is "max" or a number of bytes.
  const std::string cgroup = read_small_file("/proc/self/cgroup");
  if (cgroup.rfind("0::", 0) == 0) {
    std::string dir = "/sys/fs/cgroup" + cgroup.substr(3, cgroup.find('\n') - 3);
    const std::string max = read_small_file((dir + "/memory.max").c_str());
    const std::string current = read_small_file((dir + "/memory.current").c_str());
    if (!max.empty() && max[0] >= '0' && max[0] <= '9' && !current.empty()) {
      const std::uint64_t limit = std::strtoull(max.c_str(), nullptr, 10);
      const std::uint64_t used = std::strtoull(current.c_str(), nullptr, 10);
      total = std::min(total, limit > used ? limit - used : 0);
    }
  }
  return total;
}

} // namespace

void check_memory_fits(std::size_t bytes, const char* what) {
  const auto available = available_memory();
  if (!available || bytes <= *available) return;
  throw ValueError(std::string("procpool: ") + what + " of " + std::to_string(bytes) +
                   " bytes cannot fit: only " + std::to_string(*available) +
                   " bytes of memory (RAM plus swap, within this cgroup's limit) are available");
}

void log_owner_died(const char* what, pid_t dead_id) noexcept {
  try {
    logger().warn("{}: previous owner {} died holding it; recovered by {} (check the data it guards)", what,
                  static_cast<int>(dead_id), static_cast<int>(os::current_tid()));
  } catch (...) {
    // Logging must never turn a recovered lock into a failure.
  }
}

os::AcquireResult robust_acquire_slow(os::RobustLockState& st, std::uint32_t self, os::OwnerScope scope, bool shared,
                                   bool blocking, const os::Deadline& deadline) noexcept {
  const os::AcquireResult r = os::robust_lock_slow(st, self, scope, shared, blocking, deadline);
  if (r == os::AcquireResult::AcquiredOwnerDied)
    log_owner_died("procpool lock", static_cast<pid_t>(st.dead_owner.load(std::memory_order_relaxed)));
  return r;
}

} // namespace procpool::detail
