// SharedMemory's names: abstract Unix sockets served by the creating process (see
// shared_memory.hpp). One server thread per process, started with its first named segment,
// accepts a connection, checks that the peer runs as the same user (SO_PEERCRED), reads one
// request byte and answers: 'A' (attach) with the segment's descriptor (SCM_RIGHTS), 'U'
// (unlink) by closing the name. The kernel removes a name when its socket closes, so a
// creator that dies, however, leaves nothing behind; forked children close their copies of
// the names (pthread_atfork), so that only the creator ever answers for one.
#include "procpool/shared_memory.hpp"

#include <algorithm>
#include <limits>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <condition_variable>
#include <mutex>
#include <new>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "os/fd.hpp"
#include "procpool/detail/fd_server.hpp"

namespace procpool {
namespace {

constexpr std::size_t kMaxName = 80;  // what the socket address leaves after its prefix
constexpr int kRequestTimeoutMs = 5000;  // a peer that connects and says nothing is dropped

/// The socket address of `name` for this user: "\0procpool-shm/<uid>/<name>".
std::pair<sockaddr_un, socklen_t> name_address(const std::string& name) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string path = "procpool-shm/" + std::to_string(::getuid()) + "/" + name;
  static_assert(sizeof(address.sun_path) >= 1 + kMaxName + 24);  // NUL, "procpool-shm/" + 10-digit uid + "/"
  std::memcpy(address.sun_path + 1, path.data(), path.size());
  return {address, static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + path.size())};
}

/// Python's rules for a name, plus the socket address's room. A leading '/' is dropped.
std::string checked_name(std::string name) {
  if (!name.empty() && name.front() == '/') name.erase(0, 1);
  if (name.empty() || name.size() > kMaxName || name.find_first_of(std::string("/\0", 2)) != std::string::npos)
    throw ValueError("procpool: a SharedMemory name must be 1 to " + std::to_string(kMaxName) +
                     " characters without '/' or NUL, not '" + name + "'");
  return name;
}

std::string fresh_name() {
  static thread_local std::mt19937_64 generator{std::random_device{}()};
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", static_cast<unsigned>(generator()));
  return std::string("psm_") + hex;
}

os::UniqueFd unix_socket() {
  os::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) detail::throw_errno("procpool: socket() for a SharedMemory name failed", errno);
  return fd;
}

/// The names this process serves, and the thread that serves them. Leaked on purpose: the
/// thread may still be in poll() while the process exits.
class NameServer {
public:
  static NameServer& instance() {
    static NameServer* const server = new NameServer;
    return *server;
  }

  /// Binds `name` to the memfd `memfd` (dup'ed). FileExistsError when the name is taken.
  void add(const std::string& name, int memfd) {
    os::UniqueFd listener = unix_socket();
    const auto [address, length] = name_address(name);
    if (::bind(listener.get(), reinterpret_cast<const sockaddr*>(&address), length) != 0) {
      if (errno == EADDRINUSE) throw FileExistsError("procpool: a SharedMemory named '" + name + "' exists already");
      detail::throw_errno("procpool: cannot bind the SharedMemory name '" + name + "'", errno);
    }
    if (::listen(listener.get(), 64) != 0) detail::throw_errno("procpool: listen() for a SharedMemory name failed", errno);
    os::UniqueFd copy(::fcntl(memfd, F_DUPFD_CLOEXEC, 3));
    if (!copy) detail::throw_errno("procpool: cannot keep a SharedMemory descriptor", errno);
    std::lock_guard lock(mutex_);
    start_locked();
    names_[name] = Entry{std::move(listener), std::move(copy)};
    wake();
  }

  /// Closes `name` if this process serves it; false if it does not. Returns once the name is
  /// free: the server thread's poll() holds a reference to the socket, which keeps the name
  /// bound until poll() returns, so it waits for the thread to have let go of it.
  bool remove(const std::string& name) {
    std::unique_lock lock(mutex_);
    const auto it = names_.find(name);
    if (it == names_.end()) return false;
    names_.erase(it);
    if (std::this_thread::get_id() == server_thread_) return true;  // answering a request: not in poll()
    const std::uint64_t generation = ++generation_;
    wake();
    released_.wait(lock, [&] { return polled_generation_ >= generation || !started_; });
    return true;
  }

  // Fork: the child closes its copies of the names (and has no server thread).
  static void prepare() noexcept { instance().mutex_.lock(); }
  static void parent() noexcept { instance().mutex_.unlock(); }
  static void child() noexcept {
    NameServer& server = instance();
    server.names_.clear();
    server.wake_fd_.reset();
    server.started_ = false;
    server.server_thread_ = {};
    new (&server.released_) std::condition_variable;  // the parent's waiters are not ours
    server.mutex_.unlock();
  }

private:
  struct Entry {
    os::UniqueFd listener;
    os::UniqueFd memfd;
  };

  NameServer() { ::pthread_atfork(&NameServer::prepare, &NameServer::parent, &NameServer::child); }

  void start_locked() {
    if (started_) return;
    wake_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake_fd_) detail::throw_errno("procpool: eventfd for the SharedMemory name server failed", errno);
    std::thread server(&NameServer::serve, this, wake_fd_.get());
    server_thread_ = server.get_id();
    server.detach();
    started_ = true;
  }
  void wake() noexcept {
    if (wake_fd_) (void)::eventfd_write(wake_fd_.get(), 1);
  }

  void serve(int wake_fd) {
    std::vector<pollfd> fds;
    for (;;) {
      fds.clear();
      fds.push_back({wake_fd, POLLIN, 0});
      {
        std::lock_guard lock(mutex_);
        if (wake_fd_.get() != wake_fd) return;  // a forked child's copy of this thread never runs; be safe
        for (const auto& [name, entry] : names_) fds.push_back({entry.listener.get(), POLLIN, 0});
        polled_generation_ = generation_;  // the sockets closed so far are no longer polled
        released_.notify_all();
      }
      if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) return;
      if (fds[0].revents != 0) {
        eventfd_t ignored = 0;
        (void)::eventfd_read(wake_fd, &ignored);
      }
      for (std::size_t i = 1; i < fds.size(); ++i)
        if ((fds[i].revents & POLLIN) != 0) answer(fds[i].fd);
    }
  }

  /// One request on listener `listener` (if it still serves a name).
  void answer(int listener) {
    os::UniqueFd memfd;
    std::string name;
    {
      std::lock_guard lock(mutex_);
      const auto it = std::find_if(names_.begin(), names_.end(),
                                   [&](const auto& kv) { return kv.second.listener.get() == listener; });
      if (it == names_.end()) return;  // unlinked meanwhile
      name = it->first;
      memfd.reset(::fcntl(it->second.memfd.get(), F_DUPFD_CLOEXEC, 3));
    }
    os::UniqueFd peer(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!peer || !memfd) return;
    ucred cred{};
    socklen_t length = sizeof cred;
    if (::getsockopt(peer.get(), SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0 || cred.uid != ::getuid())
      return;  // another user: the segment is as private as a 0600 file in /dev/shm
    pollfd readable{peer.get(), POLLIN, 0};
    if (::poll(&readable, 1, kRequestTimeoutMs) != 1) return;
    char request = 0;
    if (::recv(peer.get(), &request, 1, 0) != 1) return;
    if (request == 'A') {
      (void)os::send_with_fd(peer.get(), "A", 1, memfd.get());
    } else if (request == 'U') {
      remove(name);
      (void)os::write_all(peer.get(), "U", 1);
    }
  }

  std::mutex mutex_;
  std::unordered_map<std::string, Entry> names_;
  os::UniqueFd wake_fd_;
  bool started_ = false;
  std::thread::id server_thread_;
  std::uint64_t generation_ = 0;         ///< sockets closed so far (one step per remove())
  std::uint64_t polled_generation_ = 0;  ///< generation_ when the server last rebuilt its poll set
  std::condition_variable released_;
};

/// Connects to the server of `name`, sends `request` and returns the connected socket; nullopt
/// when nobody serves that name. Refuses a server run by another user (it could hand out any
/// file).
std::optional<os::UniqueFd> ask(const std::string& name, char request) {
  os::UniqueFd sock = unix_socket();
  const auto [address, length] = name_address(name);
  if (::connect(sock.get(), reinterpret_cast<const sockaddr*>(&address), length) != 0) {
    if (errno == ECONNREFUSED || errno == ENOENT) return std::nullopt;
    detail::throw_errno("procpool: cannot reach the SharedMemory named '" + name + "'", errno);
  }
  ucred cred{};
  socklen_t cred_length = sizeof cred;
  if (::getsockopt(sock.get(), SOL_SOCKET, SO_PEERCRED, &cred, &cred_length) != 0 || cred.uid != ::getuid())
    throw ProcessError("procpool: the SharedMemory name '" + name + "' is held by another user (uid " +
                       std::to_string(cred.uid) + "); refusing it");
  const timeval timeout{kRequestTimeoutMs / 1000, 0};
  (void)::setsockopt(sock.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  if (os::write_all(sock.get(), &request, 1) != 0) return std::nullopt;  // the server closed it meanwhile
  return sock;
}

[[noreturn]] void throw_not_found(const std::string& name) {
  throw FileNotFoundError("procpool: no SharedMemory named '" + name +
                          "' (never created, unlinked, or its creator has ended)");
}

} // namespace

namespace detail {

std::string serve_descriptor(int fd) {
  static thread_local std::mt19937_64 generator{std::random_device{}()};
  for (int attempt = 0;; ++attempt) {
    char name[21];
    std::snprintf(name, sizeof name, "pfd_%016llx", static_cast<unsigned long long>(generator()));
    try {
      NameServer::instance().add(name, fd);
      return name;
    } catch (const FileExistsError&) {
      if (attempt == 16) throw ProcessError("procpool: cannot find a free name to serve a descriptor under");
    }
  }
}

void stop_serving_descriptor(const std::string& name) noexcept {
  try {
    (void)NameServer::instance().remove(name);
  } catch (...) {  // remove() takes a mutex and waits on a condition variable: nothing to report
  }
}

int fetch_descriptor(const std::string& name) {
  std::optional<os::UniqueFd> sock = ask(name, 'A');
  char reply = 0;
  const int fd = sock ? os::recv_with_fd(sock->get(), &reply, 1) : -1;
  if (fd < 0 || reply != 'A') {
    if (fd >= 0) ::close(fd);
    throw ProcessError("procpool: cannot fetch descriptor '" + name +
                       "' from its creator (it has ended or dropped the object; keep the object alive until the "
                       "child has started)");
  }
  return fd;
}

} // namespace detail

SharedMemory::SharedMemory(std::size_t size) : size_(size) {
  if (size == 0) throw ValueError("procpool: 'size' must be a positive number different from zero");
  segment_ = detail::SharedSegment::create(size, "procpool-shared-memory");
}

SharedMemory::SharedMemory(std::string name, bool create, std::size_t size) {
  if (create) {
    if (size == 0) throw ValueError("procpool: 'size' must be a positive number different from zero");
    const bool chosen = !name.empty();
    name_ = chosen ? checked_name(std::move(name)) : fresh_name();
    segment_ = detail::SharedSegment::create(size, "procpool-shared-memory");
    size_ = size;
    for (int attempt = 0;; ++attempt) {
      try {
        NameServer::instance().add(name_, segment_.handle().fd);
        break;
      } catch (const FileExistsError&) {
        if (chosen || attempt == 16) throw;  // a fresh name collided: draw another
        name_ = fresh_name();
      }
    }
    return;
  }
  name_ = checked_name(std::move(name));
  std::optional<os::UniqueFd> sock = ask(name_, 'A');
  if (!sock) throw_not_found(name_);
  char reply = 0;
  const int fd = os::recv_with_fd(sock->get(), &reply, 1);
  if (fd < 0 || reply != 'A') {
    if (fd >= 0) ::close(fd);
    throw_not_found(name_);  // unlinked or ended while we asked
  }
  segment_ = detail::SharedSegment::adopt(fd);
  struct stat st {};
  size_ = ::fstat(fd, &st) == 0 ? static_cast<std::size_t>(st.st_size) : segment_.size();
}

SharedMemory::~SharedMemory() { close(); }

void SharedMemory::close() noexcept { segment_ = detail::SharedSegment(); }

void SharedMemory::unlink() {
  if (name_.empty()) throw ValueError("procpool: an unnamed SharedMemory has no name to unlink");
  if (NameServer::instance().remove(name_)) return;
  std::optional<os::UniqueFd> sock = ask(name_, 'U');
  char reply = 0;
  if (!sock || !os::read_exact(sock->get(), &reply, 1) || reply != 'U') throw_not_found(name_);
}

void SharedMemory::encode_handle(std::string& out) const {
  if (segment_.data() == nullptr) throw ValueError("procpool: a closed SharedMemory cannot be passed to a process");
  detail::encode_segment_handle(out, segment_.handle());
  const auto length = static_cast<std::uint32_t>(name_.size());
  out.append(reinterpret_cast<const char*>(&length), sizeof length);
  out.append(name_);
}

SharedMemory::SharedMemory(detail::AttachTag, std::string_view& in)
    : segment_(detail::SharedSegment::attach(detail::decode_segment_handle(in))) {
  std::uint32_t length = 0;
  if (in.size() < sizeof length) throw SerializationError("procpool: truncated SharedMemory handle");
  std::memcpy(&length, in.data(), sizeof length);
  in.remove_prefix(sizeof length);
  if (in.size() < length) throw SerializationError("procpool: truncated SharedMemory handle");
  name_.assign(in.data(), length);
  in.remove_prefix(length);
  size_ = segment_.size();
}

} // namespace procpool

// -- ShareableList ---------------------------------------------------------------------------------
// Layout: a header (magic, count), one Slot per item (where its bytes are, how many it may take,
// what it holds), then the items' bytes. Offsets and capacities are fixed at creation; a set()
// changes a slot's bytes, length and type.

namespace procpool {

struct ShareableList::Slot {
  std::uint64_t offset;    ///< from the start of the segment
  std::uint32_t capacity;  ///< bytes reserved for the item
  std::uint32_t length;    ///< bytes of a str / bytes item
  std::uint32_t type;      ///< the Item alternative's index
  std::uint32_t reserved;
};

namespace {

constexpr std::uint64_t kListMagic = 0x3174734c53505050ULL;  // "PPPSLst1"
struct ListHeader {
  std::uint64_t magic;
  std::uint64_t count;
};
constexpr std::size_t kSlotBytes = 8;  // room of a number, a bool or None

/// The bytes of an item's value, and how many it needs.
std::string_view item_bytes(const ShareableList::Item& item, char (&scratch)[8]) {
  return std::visit(
      [&](const auto& value) -> std::string_view {
        using V = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<V, std::string>) {
          return value;
        } else if constexpr (std::is_same_v<V, ShareableList::Bytes>) {
          return {reinterpret_cast<const char*>(value.data()), value.size()};
        } else if constexpr (std::is_same_v<V, std::monostate>) {
          return {};
        } else {
          std::memcpy(scratch, &value, sizeof value);
          return {scratch, sizeof value};
        }
      },
      item);
}

std::uint32_t capacity_for(const ShareableList::Item& item) {
  char scratch[8];
  const std::size_t bytes = item_bytes(item, scratch).size();
  if (bytes > std::numeric_limits<std::uint32_t>::max() - 8)
    throw ValueError("procpool: a ShareableList item is limited to 4 GiB");
  return static_cast<std::uint32_t>(std::max(kSlotBytes, (bytes + 7) / 8 * 8));
}

std::size_t list_bytes(const std::vector<ShareableList::Item>& items, std::size_t slot_bytes) {
  std::size_t total = sizeof(ListHeader) + items.size() * slot_bytes;
  for (const auto& item : items) total += capacity_for(item);
  return total;
}

} // namespace

ShareableList::ShareableList(const std::vector<Item>& items, std::string name)
    : shm_(std::move(name), true, list_bytes(items, sizeof(Slot))), count_(items.size()) {
  auto* header = reinterpret_cast<ListHeader*>(shm_.buf().data());
  std::uint64_t offset = sizeof(ListHeader) + count_ * sizeof(Slot);
  for (std::size_t i = 0; i < count_; ++i) {
    Slot& slot = slots()[i];
    slot.offset = offset;
    slot.capacity = capacity_for(items[i]);
    offset += slot.capacity;
    set(static_cast<std::ptrdiff_t>(i), items[i]);
  }
  header->count = count_;
  header->magic = kListMagic;
}

ShareableList::ShareableList(std::string name) : shm_(std::move(name)) {
  const std::span<std::byte> buf = shm_.buf();
  ListHeader header{};
  if (buf.size() >= sizeof header) std::memcpy(&header, buf.data(), sizeof header);
  const bool fits = header.count <= (buf.size() - std::min(buf.size(), sizeof header)) / sizeof(Slot);
  if (buf.size() < sizeof header || header.magic != kListMagic || !fits)
    throw ValueError("procpool: the SharedMemory named '" + shm_.name() + "' does not hold a ShareableList");
  count_ = header.count;
  for (std::size_t i = 0; i < count_; ++i) {
    const Slot& slot = slots()[i];
    if (slot.offset > buf.size() || slot.capacity > buf.size() - slot.offset)
      throw ValueError("procpool: the ShareableList named '" + shm_.name() + "' is corrupt (slot " + std::to_string(i) +
                       " lies outside its segment)");
  }
}

ShareableList::Slot* ShareableList::slots() const noexcept {
  return reinterpret_cast<Slot*>(shm_.buf().data() + sizeof(ListHeader));
}

std::size_t ShareableList::checked(std::ptrdiff_t i) const {
  const auto n = static_cast<std::ptrdiff_t>(count_);
  if (i < 0) i += n;
  if (i < 0 || i >= n) throw IndexError("procpool: ShareableList index out of range");
  return static_cast<std::size_t>(i);
}

ShareableList::Item ShareableList::get(std::ptrdiff_t i) const {
  const Slot& slot = slots()[checked(i)];
  const std::byte* data = shm_.buf().data() + slot.offset;
  const std::uint32_t length = std::min(slot.length, slot.capacity);  // another process may be writing
  switch (slot.type) {
    case 0: return std::monostate{};
    case 1: {
      std::int64_t v;
      std::memcpy(&v, data, sizeof v);
      return v;
    }
    case 2: {
      double v;
      std::memcpy(&v, data, sizeof v);
      return v;
    }
    case 3: return std::to_integer<int>(data[0]) != 0;
    case 4: return std::string(reinterpret_cast<const char*>(data), length);
    case 5: return Bytes(data, data + length);
    default: throw ValueError("procpool: ShareableList item " + std::to_string(i) + " has an unknown type");
  }
}

void ShareableList::set(std::ptrdiff_t i, const Item& value) {
  Slot& slot = slots()[checked(i)];
  char scratch[8];
  const std::string_view bytes = item_bytes(value, scratch);
  if (bytes.size() > slot.capacity)
    throw ValueError("procpool: the new value takes " + std::to_string(bytes.size()) +
                     " bytes; ShareableList item " + std::to_string(i) + " has room for " +
                     std::to_string(slot.capacity));
  std::byte* data = shm_.buf().data() + slot.offset;
  if (std::holds_alternative<bool>(value)) data[0] = std::byte{std::get<bool>(value) ? std::uint8_t{1} : std::uint8_t{0}};
  else if (!bytes.empty()) std::memcpy(data, bytes.data(), bytes.size());
  slot.length = static_cast<std::uint32_t>(bytes.size());
  slot.type = static_cast<std::uint32_t>(value.index());
}

std::size_t ShareableList::count(const Item& value) const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < count_; ++i) n += get(static_cast<std::ptrdiff_t>(i)) == value ? 1 : 0;
  return n;
}

std::size_t ShareableList::index(const Item& value) const {
  for (std::size_t i = 0; i < count_; ++i)
    if (get(static_cast<std::ptrdiff_t>(i)) == value) return i;
  throw ValueError("procpool: the value is not in the ShareableList");
}

std::vector<ShareableList::Item> ShareableList::to_vector() const {
  std::vector<Item> items;
  items.reserve(count_);
  for (std::size_t i = 0; i < count_; ++i) items.push_back(get(static_cast<std::ptrdiff_t>(i)));
  return items;
}

} // namespace procpool
