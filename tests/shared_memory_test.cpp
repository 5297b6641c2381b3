// SharedMemory and ShareableList (Python's multiprocessing.shared_memory): unnamed segments as
// Process arguments under every start method, named ones attached by name from other processes,
// unlink from anywhere, and the guarantee Python lacks: nothing left behind when the creator is
// SIGKILLed (no /dev/shm entry, ever).
#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include <procpool/procpool.hpp>

#include "in_child.hpp"
#include "run_program.hpp"
#include "start_methods.hpp"

using namespace std::chrono_literals;
using procpool::FileExistsError;
using procpool::FileNotFoundError;
using procpool::ShareableList;
using procpool::SharedMemory;

namespace {

/// A name no other test run uses.
std::string unique_name(const char* what) { return std::string("pp_test_") + what + "_" + std::to_string(::getpid()); }

std::set<std::string> dev_shm_entries() {
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm")) names.insert(entry.path().filename());
  return names;
}

using testing::in_child;

// Process targets (plain functions: spawn and forkserver children find them again).
void fill_squares(SharedMemory& shm) {
  auto ints = shm.as<int>();
  for (std::size_t i = 0; i < ints.size(); ++i) ints[i] = static_cast<int>(i * i);
}
void create_and_wait(std::string name, procpool::Event& ready) {
  SharedMemory shm(name, true, 1 << 20);
  shm.as<int>()[0] = 1234;
  ready.set();
  for (;;) ::pause();
}
void attach_and_add(std::string name, int delta) {
  SharedMemory shm(name);
  shm.as<int>()[0] += delta;
}

} // namespace

TEST_CASE_TEMPLATE("SharedMemory.Unnamed.ChildrenWriteThroughTheArgument", M, ALL_START_METHODS) {
  SharedMemory shm(4096);
  CHECK(shm.name().empty());
  CHECK(shm.size() == 4096);
  CHECK(shm.as<int>().size() == 1024);
  CHECK(shm.as<int>()[5] == 0);  // zero-filled
  procpool::Process p(testing::options<M>(), &fill_squares, shm);
  p.start();
  p.join();
  CHECK(p.exitcode() == 0);
  CHECK(shm.as<int>()[1023] == 1023 * 1023);
}

TEST_CASE_TEMPLATE("SharedMemory.Named.ChildrenAttachByName", M, ALL_START_METHODS) {
  const std::string name = unique_name("attach");
  SharedMemory shm(name, true, 64);
  procpool::Process a(testing::options<M>(), &attach_and_add, name, 5);
  procpool::Process b(testing::options<M>(), &attach_and_add, "/" + name, 7);  // a leading '/' is ignored
  a.start();
  a.join();
  b.start();
  b.join();
  CHECK(a.exitcode() == 0);
  CHECK(b.exitcode() == 0);
  CHECK(shm.as<int>()[0] == 12);
  shm.unlink();
}

TEST_CASE("SharedMemory.Named.CreateAttachCloseUnlink") {
  const std::string name = unique_name("life");
  const auto before = dev_shm_entries();
  SharedMemory created(name, true, 100);
  CHECK(created.name() == name);
  CHECK_THROWS_AS(SharedMemory(name, true, 10), FileExistsError);
  {
    SharedMemory attached(name);
    CHECK(attached.size() == 100);
    attached.buf()[99] = std::byte{42};
    CHECK(created.buf()[99] == std::byte{42});  // the same memory
    attached.close();
    CHECK(attached.buf().empty());
  }
  CHECK(dev_shm_entries() == before);  // a name is a socket, not a file
  // Python: the name outlives close(); only unlink() removes it.
  created.close();
  SharedMemory again(name);
  CHECK(again.buf()[99] == std::byte{42});
  again.unlink();
  CHECK_THROWS_AS(SharedMemory{name}, FileNotFoundError);
  CHECK(again.buf()[99] == std::byte{42});  // mappings stay after unlink
  CHECK_THROWS_AS(again.unlink(), FileNotFoundError);
  // The name is free again.
  SharedMemory reused(name, true, 8);
  CHECK(reused.buf()[0] == std::byte{0});
  reused.unlink();
}

TEST_CASE("SharedMemory.Named.FreshNamesAndErrors") {
  SharedMemory a("", true, 16);
  SharedMemory b("", true, 16);
  CHECK(a.name().rfind("psm_", 0) == 0);
  CHECK(a.name() != b.name());
  CHECK(SharedMemory(a.name()).size() == 16);
  a.unlink();
  b.unlink();
  CHECK_THROWS_AS(SharedMemory(std::size_t{0}), procpool::ValueError);
  CHECK_THROWS_AS(SharedMemory(unique_name("zero"), true, 0), procpool::ValueError);
  CHECK_THROWS_AS(SharedMemory("a/b", true, 8), procpool::ValueError);
  CHECK_THROWS_AS(SharedMemory(std::string(81, 'x'), true, 8), procpool::ValueError);
  CHECK_THROWS_AS(SharedMemory(""), procpool::ValueError);
  SharedMemory unnamed(8);
  CHECK_THROWS_AS(unnamed.unlink(), procpool::ValueError);
  CHECK_THROWS_AS(SharedMemory{unique_name("never")}, FileNotFoundError);
}

TEST_CASE("SharedMemory.Named.AnotherProcessUnlinks") {
  const std::string name = unique_name("remote_unlink");
  SharedMemory shm(name, true, 8);
  CHECK(in_child([&] {
          SharedMemory(name).unlink();  // asks the creator, which closes the name
          return 0;
        }) == 0);
  CHECK_THROWS_AS(SharedMemory{name}, FileNotFoundError);
}

TEST_CASE("SharedMemory.Named.AForkedChildOfTheCreatorDoesNotTakeTheNameAlong") {
  const std::string name = unique_name("fork");
  SharedMemory shm(name, true, 8);
  // The child inherits the creator's memory but not its names; when it ends, the name stays.
  CHECK(in_child([&] {
          SharedMemory attached(name);  // served by the parent
          attached.as<char>()[0] = 'c';
          return 0;
        }) == 0);
  SharedMemory attached(name);
  CHECK(attached.as<char>()[0] == 'c');
  shm.unlink();
}

TEST_CASE("SharedMemory.Named.CreatorKilledLeavesNothingBehind") {
  const std::string name = unique_name("killed");
  const auto before = dev_shm_entries();
  // A spawned creator (a fresh program: its name server thread is an ordinary thread).
  procpool::Event ready;
  procpool::Process creator(procpool::ProcessOptions{.start_method = procpool::StartMethod::Spawn},
                            &create_and_wait, name, std::ref(ready));
  creator.start();
  REQUIRE(ready.wait(30s));
  {
    SharedMemory attached(name);
    CHECK(attached.as<int>()[0] == 1234);
    creator.kill();  // SIGKILL
    creator.join();
    CHECK(creator.exitcode() == -SIGKILL);
    CHECK(attached.as<int>()[0] == 1234);  // still mapped here
    CHECK_THROWS_AS(SharedMemory{name}, FileNotFoundError);  // the name died with its creator
  }
  CHECK(dev_shm_entries() == before);
  // With the last mapping gone the memory is freed: no mapping of it is left in this process.
  CHECK(testing::read_text_file("/proc/self/maps").find("procpool-shared-memory") == std::string::npos);
}

TEST_CASE("SharedMemory.Named.AnotherUserIsRefused") {
  if (::geteuid() != 0) {
    MESSAGE("SKIP: needs root to switch a child to another user");
    return;
  }
  const std::string name = unique_name("uid");
  SharedMemory shm(name, true, 8);
  // The creator serves only its own user, as a 0600 file in /dev/shm would.
  CHECK(in_child([&] {
          if (::setgid(65534) != 0 || ::setuid(65534) != 0) return 2;
          try {
            SharedMemory attached(name);
            return 1;  // got it: wrong
          } catch (const FileNotFoundError&) {
            return 0;  // its own user's namespace has no such name
          } catch (const procpool::ProcessError&) {
            return 0;
          }
        }) == 0);
  shm.unlink();
}

TEST_CASE("ShareableList.Basics.EveryTypeAndReplacement") {
  using Item = ShareableList::Item;
  const ShareableList::Bytes raw{std::byte{1}, std::byte{2}, std::byte{3}};
  ShareableList list({Item{}, Item{std::int64_t{42}}, Item{3.5}, Item{true}, Item{std::string("hello")}, Item{raw}});
  CHECK(list.size() == 6);
  CHECK(std::holds_alternative<std::monostate>(list[0]));
  CHECK(std::get<std::int64_t>(list[1]) == 42);
  CHECK(std::get<double>(list[2]) == 3.5);
  CHECK(std::get<bool>(list[3]));
  CHECK(std::get<std::string>(list[4]) == "hello");
  CHECK(std::get<ShareableList::Bytes>(list[-1]) == raw);
  CHECK_THROWS_AS((void)list[6], procpool::IndexError);
  CHECK_THROWS_AS((void)list[-7], procpool::IndexError);
  // A str slot keeps the room it had (5 bytes -> 8); a number slot holds 8 bytes.
  list.set(4, std::string("12345678"));
  CHECK_THROWS_AS(list.set(4, std::string("123456789")), procpool::ValueError);
  list.set(1, std::string("eight..."));
  CHECK(std::get<std::string>(list[1]) == "eight...");
  list.set(0, std::int64_t{7});
  CHECK(list.count(Item{std::int64_t{7}}) == 1);
  CHECK(list.index(Item{std::string("12345678")}) == 4);
  CHECK_THROWS_AS((void)list.index(Item{std::string("absent")}), procpool::ValueError);
  list.shm().unlink();
}

TEST_CASE("ShareableList.Processes.AChildAttachesByNameAndWrites") {
  using Item = ShareableList::Item;
  const std::string name = unique_name("list");
  ShareableList list({Item{std::int64_t{1}}, Item{std::string("parent")}, Item{2.0}}, name);
  CHECK(in_child([&] {
          ShareableList mine(name);
          if (mine.size() != 3 || std::get<std::string>(mine[1]) != "parent") return 1;
          mine.set(0, std::get<std::int64_t>(mine[0]) + 41);
          mine.set(1, std::string("child"));
          mine.set(2, Item{});
          return 0;
        }) == 0);
  CHECK(std::get<std::int64_t>(list[0]) == 42);
  CHECK(std::get<std::string>(list[1]) == "child");
  CHECK(std::holds_alternative<std::monostate>(list[2]));
  SharedMemory plain(unique_name("plain"), true, 64);
  CHECK_THROWS_AS(ShareableList{plain.name()}, procpool::ValueError);  // not a list
  plain.unlink();
  list.shm().unlink();
}
