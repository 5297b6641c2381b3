// procpool::shared::Dict, List and String: two copies of a container of bytes in one memfd
// segment, each in its own Boost.Interprocess heap (see procpool/detail/shared_container.hpp for
// the protocol and docs/shared_memory.md for the guarantee).
#include "procpool/detail/shared_container.hpp"
#include "procpool/detail/os/wait.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <new>
#include <optional>
#include <stdexcept>

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/container/string.hpp>
#include <boost/container/vector.hpp>
#include <boost/interprocess/allocators/allocator.hpp>
#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/indexes/iset_index.hpp>
#include <boost/interprocess/mem_algo/rbtree_best_fit.hpp>
#include <boost/interprocess/segment_manager.hpp>
#include <boost/interprocess/sync/mutex_family.hpp>
#include <boost/unordered_map.hpp>

#include "procpool/detail/fd_server.hpp"
#include "procpool/detail/os/ids.hpp"
#include "procpool/detail/os/robust_lock.hpp"
#include "procpool/detail/robust_mutex.hpp"
#include "procpool/detail/shared_handle.hpp"
#include "procpool/errors.hpp"
#include "procpool/shared/options.hpp"

namespace procpool::detail {

void (*shared_container_fault_hook)(int point) noexcept = nullptr;

namespace {

namespace bi = boost::interprocess;

// No locking inside the heap: the container's robust lock guards it.
using SegmentManager = bi::segment_manager<char, bi::rbtree_best_fit<bi::null_mutex_family>, bi::iset_index>;
template <class T>
using Alloc = bi::allocator<T, SegmentManager>;
using Bytes = boost::container::basic_string<char, std::char_traits<char>, Alloc<char>>;

std::string_view view(const Bytes& b) noexcept { return {b.data(), b.size()}; }

struct BytesHash {
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  std::size_t operator()(const Bytes& b) const noexcept { return (*this)(view(b)); }
};
struct BytesEq {
  bool operator()(const Bytes& a, const Bytes& b) const noexcept { return view(a) == view(b); }
  bool operator()(std::string_view a, const Bytes& b) const noexcept { return a == view(b); }
  bool operator()(const Bytes& a, std::string_view b) const noexcept { return view(a) == b; }
};
using Map = boost::unordered_map<Bytes, Bytes, BytesHash, BytesEq, Alloc<std::pair<const Bytes, Bytes>>>;
/// A key's hash computed before the lock is taken: the lookups under it (one per copy) reuse it,
/// which shortens the time both processes wait for each other.
struct Prehashed {
  std::size_t hash;
  std::size_t operator()(std::string_view) const noexcept { return hash; }
};
using Vec = boost::container::vector<Bytes, Alloc<Bytes>>;

constexpr std::uint64_t kMagic = 0x316e6f6368737070ULL;  // "ppshcon1"
constexpr std::size_t kHeaderBytes = 4096;
constexpr std::size_t kMinHeap = std::size_t{16} << 10;

std::size_t page_round(std::size_t n) { return (n + 4095) / 4096 * 4096; }

// Builds a Bytes in heap `sm`.
Bytes bytes(std::string_view s, SegmentManager* sm) { return Bytes(s.data(), s.size(), Alloc<char>(sm)); }

void copy_into(const Map& from, Map& to, SegmentManager* sm) {
  to.reserve(from.size());
  for (const auto& [k, v] : from) to.emplace(bytes(view(k), sm), bytes(view(v), sm));
}
void copy_into(const Vec& from, Vec& to, SegmentManager* sm) {
  to.reserve(from.size());
  for (const Bytes& b : from) to.emplace_back(b.data(), b.size(), Alloc<char>(sm));
}
void copy_into(const Bytes& from, Bytes& to, SegmentManager*) { to.assign(from.data(), from.size()); }

void map_assign(Map& m, std::string_view key, std::size_t hash, std::string_view value, SegmentManager* sm) {
  if (auto it = m.find(key, Prehashed{hash}, BytesEq{}); it != m.end()) {
    it->second.assign(value.data(), value.size());
    return;
  }
  m.emplace(bytes(key, sm), bytes(value, sm));
}

// Keeps the stores before it ahead of those after it in the program as compiled. That is all a
// crash needs: a SIGKILL stops a process between two instructions, and every store before that
// point still reaches memory (the next holder reads it after the kernel has torn the process
// down); a live holder hands everything over through the lock's release and acquire.
inline void crash_order() noexcept { std::atomic_signal_fence(std::memory_order_seq_cst); }

// Runs `f`; false if it ran out of room in its heap (Boost throws bad_alloc, or length_error for
// a request beyond the heap's size), whatever it had done by then.
template <class F>
bool fits(F&& f) {
  try {
    f();
    return true;
  } catch (const bi::bad_alloc&) {
    return false;
  } catch (const std::length_error&) {
    return false;
  }
}

// Python's index rule for get/set/pop: negative counts from the end; IndexError outside.
std::size_t checked_index(std::ptrdiff_t index, std::size_t size, const char* what) {
  const auto n = static_cast<std::ptrdiff_t>(size);
  const std::ptrdiff_t i = index < 0 ? index + n : index;
  if (i < 0 || i >= n) throw IndexError(std::string("procpool::shared::List: ") + what);
  return static_cast<std::size_t>(i);
}

} // namespace

struct SharedContainer::Header {
  struct Slot {
    std::atomic<std::uint64_t> offset{0};  // of the heap (its segment manager), from the segment start
    std::atomic<std::uint64_t> size{0};
    std::atomic<std::uint64_t> root{0};  // of the container, from the segment start (valid when the copy is)
  };
  std::uint64_t magic = kMagic;
  ContainerKind kind = ContainerKind::Dict;
  std::uint64_t type_tag = 0;  // detail::element_type_tag of the elements
  // The lock on a cache line of its own: a waiter spinning on it would otherwise pull away, again
  // and again, the line the holder writes `active` and `standby_dirty` to (2x the set rate here).
  alignas(64) os::RobustLockState lock;
  alignas(64) std::atomic<std::uint32_t> active{0};
  std::atomic<std::uint32_t> standby_dirty{0};
  std::atomic<std::uint64_t> total{0};     // bytes of the segment in use (every mapping must cover it)
  std::atomic<std::uint64_t> max_heap{0};  // Options::max_bytes
  std::atomic<std::uint64_t> recoveries{0};
  std::atomic<std::uint64_t> grows{0};
  Slot slots[2];
};

/// Pauses (~25 ns each here, ~3 µs in all) a process waits before competing for a held lock.
constexpr int kContendedBackoffPauses = 128;

// The container's lock, held for the scope of one operation; maps a segment that another
// process grew before anything reads the heaps.
class SharedContainer::Held {
public:
  explicit Held(const SharedContainer& c) : header_(c.header()) {
    const auto self = static_cast<std::uint32_t>(os::current_tid());
    std::uint32_t free = 0;
    // One atomic on the lock's line when it is free (a read first would fetch the line twice).
    if (!header_.lock.word.compare_exchange_strong(free, self, std::memory_order_acquire, std::memory_order_relaxed)) {
      // The lock is not re-entrant: a modify() callback that uses its own container would wait
      // for itself forever.
      if (os::robust_owner(header_.lock) == self)
        throw StateError("procpool::shared: a container used from inside one of its own operations (a modify() "
                         "callback or an element's operator==)");
      // Back off before competing: the holder, about to take the lock again for its next
      // operation, then runs several with its caches warm, where a lock that alternates between
      // processes moves every line each operation touches (from 2 processes here: set 1.4M ->
      // 3.4M ops/s, get 2.7M -> 8.3M). Not fair, as a futex mutex is not; a waiter is in after
      // a few microseconds of the holder's absence.
      for (int i = 0; i < kContendedBackoffPauses; ++i) os::cpu_relax();
      robust_acquire(header_.lock, self, os::OwnerScope::Thread, /*shared=*/true, /*blocking=*/true, std::nullopt);
    }
    try {
      c.remap();
    } catch (...) {
      os::robust_unlock(header_.lock, true);
      throw;
    }
  }
  ~Held() { os::robust_unlock(header_.lock, true); }
  Held(const Held&) = delete;
  Held& operator=(const Held&) = delete;

private:
  Header& header_;
};

SharedContainer::Header& SharedContainer::header() const noexcept {
  static_assert(sizeof(Header) <= kHeaderBytes);
  static_assert(std::is_trivially_destructible_v<Header>);  // a forked child never tears it down
  return *std::launder(static_cast<Header*>(segment_.data()));
}

void SharedContainer::remap() const {
  const std::uint64_t total = header().total.load(std::memory_order_acquire);
  if (total <= mapped_) return;
  void* p = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, segment_.handle().fd, 0);
  if (p == MAP_FAILED)
    throw shared::CapacityError("procpool::shared: cannot map the grown container (" + std::to_string(total) +
                                " bytes): " + std::strerror(errno));
  if (grown_map_ != nullptr) ::munmap(grown_map_, mapped_);
  grown_map_ = p;
  base_ = static_cast<char*>(p);
  mapped_ = total;
}

template <class Root>
Root& SharedContainer::root(std::uint32_t slot) const noexcept {
  return *std::launder(reinterpret_cast<Root*>(base_ + header().slots[slot].root.load(std::memory_order_relaxed)));
}

template <class Root>
const Root& SharedContainer::active() const noexcept {
  return root<Root>(header().active.load(std::memory_order_relaxed));
}

// Makes `slot`'s heap afresh where its header says it is, holding a copy of `source` (or an
// empty container). Whatever the heap held is abandoned, never read: it may be half-written.
template <class Root>
void SharedContainer::build(std::uint32_t slot, const Root* source) {
  Header::Slot& s = header().slots[slot];
  char* heap = base_ + s.offset.load(std::memory_order_relaxed);
  auto* sm = ::new (heap) SegmentManager(static_cast<SegmentManager::size_type>(s.size.load(std::memory_order_relaxed)));
  Root* r = sm->construct<Root>(bi::anonymous_instance)(Alloc<char>(sm));
  if (source != nullptr) copy_into(*source, *r, sm);
  s.root.store(static_cast<std::uint64_t>(reinterpret_cast<char*>(r) - base_), std::memory_order_release);
}

// Before a write: a standby copy left half-changed by a holder that died is rebuilt.
template <class Root>
void SharedContainer::ensure_standby() {
  Header& h = header();
  if (h.standby_dirty.load(std::memory_order_acquire) == 0) return;
  h.recoveries.fetch_add(1, std::memory_order_relaxed);
  const std::uint32_t a = h.active.load(std::memory_order_relaxed);
  if (!fits([&] { build<Root>(1 - a, &active<Root>()); })) {
    grow<Root>();  // rebuilds both copies
    return;
  }
  h.standby_dirty.store(0, std::memory_order_release);
}

// Doubles both heaps: the standby copy is rebuilt in a new heap past the end of the segment and
// made active, then the old active one is rebuilt over the two old heaps. Every step leaves an
// intact active copy, and each slot's region is written offset first, so that a crash between
// the two stores leaves it inside the segment, clear of the active copy.
template <class Root>
void SharedContainer::grow() {
  Header& h = header();
  const std::uint64_t heap = std::max(h.slots[0].size.load(), h.slots[1].size.load());
  const std::uint64_t next = heap * 2;
  const std::uint64_t max_heap = h.max_heap.load(std::memory_order_relaxed);
  if (next > max_heap)
    throw shared::CapacityError("procpool::shared: the container is full (" + std::to_string(heap) +
                                " bytes, and Options::max_bytes is " + std::to_string(max_heap) +
                                "): remove items or create it with a larger max_bytes");
  const std::uint64_t old_end = h.total.load(std::memory_order_relaxed);
  const std::uint64_t new_total = old_end + next;
  h.standby_dirty.store(1, std::memory_order_relaxed);
  crash_order();

  const int fd = segment_.handle().fd;
  struct stat st {};
  if (::fstat(fd, &st) != 0 ||
      (static_cast<std::uint64_t>(st.st_size) < new_total && ::ftruncate(fd, static_cast<off_t>(new_total)) != 0))
    throw shared::CapacityError("procpool::shared: cannot grow the container to " + std::to_string(new_total) +
                                " bytes: " + std::strerror(errno));
  h.total.store(new_total, std::memory_order_release);
  remap();

  const std::uint32_t a = h.active.load(std::memory_order_relaxed);
  const std::uint32_t s = 1 - a;
  h.slots[s].offset.store(old_end, std::memory_order_release);
  h.slots[s].size.store(next, std::memory_order_release);
  if (!fits([&] { build<Root>(s, &active<Root>()); }))
    throw shared::CapacityError("procpool::shared: cannot copy the container into a heap of " +
                                std::to_string(next) + " bytes");
  if (shared_container_fault_hook != nullptr) shared_container_fault_hook(3);
  h.active.store(s, std::memory_order_release);
  crash_order();
  if (shared_container_fault_hook != nullptr) shared_container_fault_hook(4);
  h.slots[a].offset.store(kHeaderBytes, std::memory_order_release);
  h.slots[a].size.store(old_end - kHeaderBytes, std::memory_order_release);
  h.grows.fetch_add(1, std::memory_order_relaxed);
  // A heap at least as large as the active one: the copy fits. Were it not to, the flag stays set
  // and the next write tries again; the active copy is whole either way.
  if (fits([&] { build<Root>(a, &active<Root>()); })) h.standby_dirty.store(0, std::memory_order_release);
}

// Applies `op(root, heap)` to both copies, all or nothing (see the header). `op` must do the
// same to either copy and may throw only on allocation: checks come before the write.
template <class Root, class Op>
void SharedContainer::write(Op&& op) {
  Header& h = header();
  ensure_standby<Root>();
  for (;;) {
    const std::uint32_t a = h.active.load(std::memory_order_relaxed);
    const std::uint32_t s = 1 - a;
    auto heap = [&](std::uint32_t slot) {
      return std::launder(reinterpret_cast<SegmentManager*>(base_ + h.slots[slot].offset.load(std::memory_order_relaxed)));
    };
    h.standby_dirty.store(1, std::memory_order_relaxed);
    crash_order();  // flagged before the copy changes
    if (!fits([&] { op(root<Root>(s), heap(s)); })) {
      grow<Root>();  // rebuilds the half-changed copy too; CapacityError past max_bytes
      continue;
    }
    if (shared_container_fault_hook != nullptr) shared_container_fault_hook(1);
    h.active.store(s, std::memory_order_release);  // the commit point
    crash_order();
    if (shared_container_fault_hook != nullptr) shared_container_fault_hook(2);
    // The older copy may be more fragmented and not fit where the other did; a fresh copy packs
    // tighter. If even that fails, the flag stays set and the next write rebuilds or grows.
    if (fits([&] { op(root<Root>(a), heap(a)); }) || fits([&] { build<Root>(a, &active<Root>()); }))
      h.standby_dirty.store(0, std::memory_order_release);
    return;
  }
}

SharedContainer::SharedContainer(ContainerKind kind, std::uint64_t type_tag, std::size_t initial_bytes,
                                 std::size_t max_bytes)
    : kind_(kind) {
  const std::size_t heap = page_round(std::max(initial_bytes, kMinHeap));
  if (max_bytes < heap)
    throw ValueError("procpool::shared: Options::max_bytes (" + std::to_string(max_bytes) +
                     ") is below initial_bytes (" + std::to_string(heap) + " after rounding)");
  const char* name = kind == ContainerKind::Dict ? "procpool-shared-dict"
                     : kind == ContainerKind::List ? "procpool-shared-list"
                                                   : "procpool-shared-string";
  segment_ = SharedSegment::create(kHeaderBytes + 2 * heap, name);
  base_ = static_cast<char*>(segment_.data());
  mapped_ = segment_.size();
  Header& h = *::new (segment_.data()) Header();
  h.kind = kind;
  h.type_tag = type_tag;
  h.total.store(mapped_);
  h.max_heap.store(max_bytes);
  h.slots[0].offset.store(kHeaderBytes);
  h.slots[0].size.store(heap);
  h.slots[1].offset.store(kHeaderBytes + heap);
  h.slots[1].size.store(heap);
  for (std::uint32_t slot = 0; slot < 2; ++slot) {
    switch (kind) {
      case ContainerKind::Dict: build<Map>(slot, nullptr); break;
      case ContainerKind::List: build<Vec>(slot, nullptr); break;
      case ContainerKind::String: build<Bytes>(slot, nullptr); break;
    }
  }
}

SharedContainer::SharedContainer(ContainerKind kind, std::uint64_t type_tag, std::string_view& in)
    : kind_(kind), segment_(SharedSegment::attach(decode_segment_handle(in))) {
  check_header(type_tag);
}

SharedContainer::SharedContainer(ContainerKind kind, std::uint64_t type_tag, const std::string& name) : kind_(kind) {
  int fd = -1;
  try {
    fd = fetch_descriptor(name);
  } catch (const ProcessError&) {
    throw FileNotFoundError("procpool::shared: no container is served under the name '" + name +
                            "' (never made, or the process that made it has destroyed it or ended)");
  }
  segment_ = SharedSegment::adopt(fd);
  check_header(type_tag);
}

void SharedContainer::check_header(std::uint64_t type_tag) const {
  base_ = static_cast<char*>(segment_.data());
  mapped_ = segment_.size();
  if (mapped_ < kHeaderBytes || header().magic != kMagic)
    throw ValueError("procpool::shared: that segment does not hold a shared container");
  if (header().kind != kind_ || header().type_tag != type_tag)
    throw ValueError("procpool::shared: that container is of another kind or holds other types");
}

SharedContainer::~SharedContainer() {
  if (!served_name_.empty()) stop_serving_descriptor(served_name_);
  if (grown_map_ != nullptr) ::munmap(grown_map_, mapped_);
}

std::string SharedContainer::name() const {
  Held g(*this);
  if (served_name_.empty()) served_name_ = serve_descriptor(segment_.handle().fd);
  return served_name_;
}

void SharedContainer::encode_handle(std::string& out) const { encode_segment_handle(out, segment_.handle()); }

std::size_t SharedContainer::size() const {
  Held g(*this);
  switch (kind_) {
    case ContainerKind::Dict: return active<Map>().size();
    case ContainerKind::List: return active<Vec>().size();
    case ContainerKind::String: return active<Bytes>().size();
  }
  return 0;
}

void SharedContainer::clear() {
  Held g(*this);
  switch (kind_) {
    case ContainerKind::Dict: write<Map>([](Map& m, SegmentManager*) { m.clear(); }); break;
    case ContainerKind::List: write<Vec>([](Vec& v, SegmentManager*) { v.clear(); }); break;
    case ContainerKind::String: write<Bytes>([](Bytes& b, SegmentManager*) { b.clear(); }); break;
  }
}

ContainerStats SharedContainer::stats() const {
  Held g(*this);
  const Header& h = header();
  const auto& slot = h.slots[h.active.load(std::memory_order_relaxed)];
  const auto* sm = std::launder(reinterpret_cast<const SegmentManager*>(base_ + slot.offset.load()));
  ContainerStats out;
  out.capacity_bytes = sm->get_size();
  out.used_bytes = sm->get_size() - sm->get_free_memory();
  out.recoveries = h.recoveries.load(std::memory_order_relaxed);
  out.grows = h.grows.load(std::memory_order_relaxed);
  return out;
}

// ---- Dict ----

bool SharedContainer::dict_get(std::string_view key, View out) const {
  const std::size_t hash = BytesHash{}(key);
  Held g(*this);
  const Map& m = active<Map>();
  const auto it = m.find(key, Prehashed{hash}, BytesEq{});
  if (it == m.end()) return false;
  out(view(it->second));
  return true;
}

bool SharedContainer::dict_contains(std::string_view key) const {
  Held g(*this);
  const Map& m = active<Map>();
  return m.find(key, BytesHash{}, BytesEq{}) != m.end();
}

void SharedContainer::dict_set(std::string_view key, std::string_view value) {
  const std::size_t hash = BytesHash{}(key);
  Held g(*this);
  write<Map>([&](Map& m, SegmentManager* sm) { map_assign(m, key, hash, value, sm); });
}

bool SharedContainer::dict_setdefault(std::string_view key, std::string_view value, View out) {
  Held g(*this);
  {
    const Map& m = active<Map>();
    if (const auto it = m.find(key, BytesHash{}, BytesEq{}); it != m.end()) {
      out(view(it->second));
      return false;
    }
  }
  write<Map>([&](Map& m, SegmentManager* sm) { m.emplace(bytes(key, sm), bytes(value, sm)); });
  out(value);
  return true;
}

bool SharedContainer::dict_pop(std::string_view key, View out) {
  Held g(*this);
  {
    const Map& m = active<Map>();
    const auto it = m.find(key, BytesHash{}, BytesEq{});
    if (it == m.end()) return false;
    out(view(it->second));
  }
  write<Map>([&](Map& m, SegmentManager*) { m.erase(m.find(key, BytesHash{}, BytesEq{})); });
  return true;
}

void SharedContainer::dict_update(std::span<const std::pair<std::string_view, std::string_view>> items) {
  Held g(*this);
  write<Map>([&](Map& m, SegmentManager* sm) {
    for (const auto& [k, v] : items) map_assign(m, k, BytesHash{}(k), v, sm);
  });
}

void SharedContainer::dict_modify(std::string_view key, Compute compute) {
  const std::size_t hash = BytesHash{}(key);
  Held g(*this);
  std::string_view value;
  {
    const Map& m = active<Map>();
    const auto it = m.find(key, Prehashed{hash}, BytesEq{});
    if (it == m.end()) {
      value = compute(nullptr);
    } else {
      const std::string_view old = view(it->second);
      value = compute(&old);
    }
  }
  write<Map>([&](Map& m, SegmentManager* sm) { map_assign(m, key, hash, value, sm); });
}

void SharedContainer::dict_items(PairView each) const {
  Held g(*this);
  for (const auto& [k, v] : active<Map>()) each(view(k), view(v));
}

// ---- List ----

void SharedContainer::list_get(std::ptrdiff_t index, View out) const {
  Held g(*this);
  const Vec& v = active<Vec>();
  out(view(v[checked_index(index, v.size(), "list index out of range")]));
}

void SharedContainer::list_set(std::ptrdiff_t index, std::string_view value) {
  Held g(*this);
  const std::size_t i = checked_index(index, active<Vec>().size(), "list assignment index out of range");
  write<Vec>([&](Vec& v, SegmentManager*) { v[i].assign(value.data(), value.size()); });
}

void SharedContainer::list_insert(std::ptrdiff_t index, std::string_view value) {
  Held g(*this);
  const auto n = static_cast<std::ptrdiff_t>(active<Vec>().size());
  const auto i = static_cast<std::size_t>(std::clamp<std::ptrdiff_t>(index < 0 ? index + n : index, 0, n));
  write<Vec>([&](Vec& v, SegmentManager* sm) {
    v.emplace(v.begin() + static_cast<std::ptrdiff_t>(i), value.data(), value.size(), Alloc<char>(sm));
  });
}

void SharedContainer::list_extend(std::span<const std::string_view> values) {
  Held g(*this);
  write<Vec>([&](Vec& v, SegmentManager* sm) {
    v.reserve(v.size() + values.size());
    for (const std::string_view value : values) v.emplace_back(value.data(), value.size(), Alloc<char>(sm));
  });
}

void SharedContainer::list_pop(std::ptrdiff_t index, View out) {
  Held g(*this);
  const Vec& current = active<Vec>();
  if (current.empty()) throw IndexError("procpool::shared::List: pop from empty list");
  const std::size_t i = checked_index(index, current.size(), "pop index out of range");
  out(view(current[i]));
  write<Vec>([&](Vec& v, SegmentManager*) { v.erase(v.begin() + static_cast<std::ptrdiff_t>(i)); });
}

std::size_t SharedContainer::list_find(Match match, std::size_t start) const {
  Held g(*this);
  const Vec& v = active<Vec>();
  for (std::size_t i = start; i < v.size(); ++i)
    if (match(view(v[i]))) return i;
  return npos;
}

std::size_t SharedContainer::list_count(Match match) const {
  Held g(*this);
  std::size_t n = 0;
  for (const Bytes& b : active<Vec>()) n += match(view(b)) ? 1 : 0;
  return n;
}

bool SharedContainer::list_remove(Match match) {
  Held g(*this);
  const Vec& current = active<Vec>();
  std::size_t i = 0;
  while (i < current.size() && !match(view(current[i]))) ++i;
  if (i == current.size()) return false;
  write<Vec>([&](Vec& v, SegmentManager*) { v.erase(v.begin() + static_cast<std::ptrdiff_t>(i)); });
  return true;
}

void SharedContainer::list_items(View each) const {
  Held g(*this);
  for (const Bytes& b : active<Vec>()) each(view(b));
}

// ---- String ----

void SharedContainer::string_get(View out) const {
  Held g(*this);
  out(view(active<Bytes>()));
}

void SharedContainer::string_assign(std::string_view value) {
  Held g(*this);
  write<Bytes>([&](Bytes& b, SegmentManager*) { b.assign(value.data(), value.size()); });
}

void SharedContainer::string_append(std::string_view value) {
  Held g(*this);
  write<Bytes>([&](Bytes& b, SegmentManager*) { b.append(value.data(), value.size()); });
}

} // namespace procpool::detail
