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

#include "os/proc.hpp"
#include "procpool/detail/robust_mutex.hpp"
#include "procpool/detail/sync_support.hpp"
#include "procpool/log.hpp"

namespace procpool::detail {

void check_memory_fits(std::size_t bytes, const char* what) {
  const auto available = os::available_memory();
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
