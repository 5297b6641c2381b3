// What a child gets from its parent and nothing more (issue 10, items 2, 3, 4, 7, 10, 22, 23):
// descriptors, shared objects checked by identity, the Barrier timeout, the log level, its own
// start method; and joins with timeouts too long to represent.
#include <doctest/doctest.h>

#include <cerrno>
#include <cstring>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <procpool/detail/callable_ref.hpp>
#include <procpool/detail/ring.hpp>
#include <procpool/detail/shm.hpp>
#include <procpool/log.hpp>
#include <procpool/procpool.hpp>

#include "start_methods.hpp"

using namespace std::chrono_literals;
using procpool::Process;

namespace {

/// Joins with a generous bound; kills and fails instead of hanging.
void join_or_kill(Process& p) {
  if (!p.join(30s)) {
    p.kill();
    p.join();
    FAIL("child did not end within 30 s");
  }
}

int a_variable = 1;

void sleep_then_exit(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

void fd_must_be_closed(int fd) {
  const bool closed = ::fcntl(fd, F_GETFD) < 0 && errno == EBADF;
  ::_exit(closed ? 0 : 3);
}

void barrier_alone(procpool::Barrier& barrier) {
  try {
    barrier.wait();  // the default timeout given to the constructor
  } catch (const procpool::BrokenBarrierError&) {
    ::_exit(0);
  }
  ::_exit(3);
}

void log_level_must_be(int level) { ::_exit(static_cast<int>(procpool::logger().level()) == level ? 0 : 3); }

void start_method_must_be(int method) {
  ::_exit(static_cast<int>(procpool::get_start_method()) == method ? 0 : 3);
}

int other_file_on(int fd_number) {
  // Take the lowest free number, which is the one just released.
  const int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  REQUIRE(fd == fd_number);
  return fd;
}

} // namespace

// Item 10: a timeout too long to represent means "wait", not "already expired".
TEST_CASE_TEMPLATE("ChildState.Join.HugeTimeoutWaits", M, ALL_START_METHODS) {
  Process p(testing::options<M>(), &sleep_then_exit, 300);
  p.start();
  CHECK(p.join(std::chrono::hours::max()));
  CHECK(p.exitcode() == 0);
  Process q(testing::options<M>(), &sleep_then_exit, 300);
  q.start();
  CHECK(q.join_until(std::chrono::steady_clock::time_point::max()));
  CHECK(q.exitcode() == 0);
  Process r(testing::options<M>(), &sleep_then_exit, 5000);
  r.start();
  CHECK_FALSE(r.join(-1s));  // negative: only polls
  r.kill();
  join_or_kill(r);
}

// Item 4: spawned and forkserver children get descriptors 0-2 only (Python's close_fds), and
// the spawn payload is never inheritable.
TEST_CASE_TEMPLATE("ChildState.Descriptors.OnlyWhatProcpoolPasses", M, testing::Spawn, testing::Forkserver) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);  // no O_CLOEXEC: a child exec'd the plain way would inherit it
  Process p(testing::options<M>(), &fd_must_be_closed, fds[1]);
  p.start();
  // The payload memfd of a running spawn child is close-on-exec in the parent.
  int payloads = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(entry.path(), ec).string();
    if (target.rfind("/memfd:procpool-spawn", 0) != 0) continue;
    ++payloads;
    CHECK((::fcntl(std::stoi(entry.path().filename().string()), F_GETFD) & FD_CLOEXEC) != 0);
  }
  CHECK(payloads == (M::method == procpool::StartMethod::Spawn ? 1 : 0));
  join_or_kill(p);
  CHECK(p.exitcode() == 0);
  ::close(fds[0]);
  ::close(fds[1]);
}

// Item 2: a handle whose descriptor number now names another file must not attach to it.
TEST_CASE("ChildState.Attach.ReusedDescriptorIsRefused") {
  SUBCASE("segment") {
    auto seg = std::make_unique<procpool::detail::SharedSegment>(procpool::detail::SharedSegment::create(64));
    const auto handle = seg->handle();
    CHECK_NOTHROW(procpool::detail::SharedSegment::attach(handle));
    seg.reset();
    const int other = other_file_on(handle.fd);
    CHECK_THROWS_WITH_AS(procpool::detail::SharedSegment::attach(handle),
                         doctest::Contains("no longer holds it"), procpool::ProcessError);
    ::close(other);
  }
  SUBCASE("Value") {
    auto value = std::make_unique<procpool::Value<int>>(7);
    std::string encoded;
    value->procpool_encode_handle(encoded);
    std::string_view in = encoded;
    CHECK(procpool::Value<int>::procpool_attach(in)->value() == 7);
    procpool::detail::SegmentHandle handle;
    std::memcpy(&handle, encoded.data(), sizeof handle);
    value.reset();
    const int other = other_file_on(handle.fd);
    in = encoded;
    CHECK_THROWS_AS(procpool::Value<int>::procpool_attach(in), procpool::ProcessError);
    ::close(other);
  }
  SUBCASE("Lock") {
    auto lock = std::make_unique<procpool::Lock>();
    std::string encoded;
    lock->procpool_encode_handle(encoded);
    procpool::detail::SegmentHandle handle;
    std::memcpy(&handle, encoded.data(), sizeof handle);
    lock.reset();
    const int other = other_file_on(handle.fd);
    std::string_view in = encoded;
    CHECK_THROWS_AS(procpool::Lock::procpool_attach(in), procpool::ProcessError);
    ::close(other);
  }
  SUBCASE("ring") {
    auto ring = std::make_unique<procpool::detail::Ring>(procpool::detail::RingOptions{.capacity_bytes = 8192}, true);
    std::string encoded;
    ring->encode_handle(encoded);
    std::int32_t fd_number = 0;
    std::memcpy(&fd_number, encoded.data() + sizeof(std::int32_t), sizeof fd_number);
    ring.reset();
    // A memfd of the right size: only the identity check can tell it apart.
    const int other = ::memfd_create("impostor", MFD_CLOEXEC);
    REQUIRE(other == fd_number);
    REQUIRE(::ftruncate(other, 4096 + 8192) == 0);
    std::string_view in = encoded;
    CHECK_THROWS_WITH_AS(procpool::detail::Ring::attach(in), doctest::Contains("no longer holds it"),
                         procpool::ProcessError);
    ::close(other);
  }
}

// Item 3: a target whose object has another build-id than the parent's is refused, naming both.
TEST_CASE("ChildState.CodeRef.BuildIdMismatchIsRefused") {
  auto ref = procpool::detail::code_ref_of(procpool::detail::code_address(&sleep_then_exit));
  REQUIRE(ref.build_id.size() >= 16);  // the toolchain writes NT_GNU_BUILD_ID
  CHECK(ref.build_id == procpool::detail::loaded_build_id(ref.object));
  CHECK(procpool::detail::resolve_code_ref(ref) == procpool::detail::code_address(&sleep_then_exit));
  auto replaced = ref;
  replaced.build_id = std::string(ref.build_id.size(), '0');
  try {
    (void)procpool::detail::resolve_code_ref(replaced);
    FAIL("a mismatched build-id was accepted");
  } catch (const procpool::ProcessError& e) {
    const std::string what = e.what();
    CHECK(what.find(ref.build_id) != std::string::npos);
    CHECK(what.find(replaced.build_id) != std::string::npos);
    CHECK(what.find("<main program>") != std::string::npos);
  }
  // An offset outside the object's code (here: a variable) is no function entry.
  const auto data = procpool::detail::code_ref_of(&a_variable);
  CHECK(data.object == ref.object);
  CHECK_THROWS_WITH_AS((void)procpool::detail::resolve_code_ref(data), doctest::Contains("not in an executable segment"),
                       procpool::ProcessError);
  // A fresh child checks every object its parent had (pool tasks are found by offset too).
  auto objects = procpool::detail::loaded_objects();
  REQUIRE_FALSE(objects.empty());
  CHECK_NOTHROW(procpool::detail::check_same_objects(objects));
  const std::string real = objects.front().build_id;
  objects.front().build_id = "00112233445566778899aabbccddeeff00112233";
  CHECK_THROWS_WITH_AS(procpool::detail::check_same_objects(objects),
                       doctest::Contains(doctest::String(
                           ("build-id " + real + " but the parent's has build-id " + objects.front().build_id).c_str())),
                       procpool::ProcessError);
}

// Item 7: the Barrier's default timeout reaches every child.
TEST_CASE_TEMPLATE("ChildState.Barrier.DefaultTimeoutInChild", M, ALL_START_METHODS) {
  procpool::Barrier barrier(2, {}, 200ms);
  Process p(testing::options<M>(), &barrier_alone, std::ref(barrier));
  p.start();
  join_or_kill(p);
  CHECK(p.exitcode() == 0);
}

// Item 22: set_log_level() is inherited.
TEST_CASE_TEMPLATE("ChildState.Log.LevelInherited", M, ALL_START_METHODS) {
  const auto before = procpool::logger().level();
  procpool::set_log_level(spdlog::level::critical);
  Process p(testing::options<M>(), &log_level_must_be, static_cast<int>(spdlog::level::critical));
  p.start();
  join_or_kill(p);
  procpool::set_log_level(before);
  CHECK(p.exitcode() == 0);
}

// Item 23: a spawn or forkserver child names its own start method (a forked child inherits
// the default, as in Python).
TEST_CASE_TEMPLATE("ChildState.StartMethod.ChildNamesItsOwn", M, ALL_START_METHODS) {
  const auto expected = M::method == procpool::StartMethod::Fork ? procpool::get_start_method() : M::method;
  Process p(testing::options<M>(), &start_method_must_be, static_cast<int>(expected));
  p.start();
  join_or_kill(p);
  CHECK(p.exitcode() == 0);
}
