// Value, RawValue, Array, RawArray on both backends.
#include <doctest/doctest.h>

#include <algorithm>
#include <mutex>
#include <numeric>
#include <ranges>
#include <span>
#include <string>
#include <vector>

#include <procpool/sync.hpp>

#include "sync_test_support.hpp"

using procpool::Processes;
using procpool::Threads;

namespace {
struct Point {
  int x;
  double y;
};
} // namespace

TEST_CASE_TEMPLATE("Sync.Value.Basics", B, Processes, Threads) {
  typename B::template Value<double> d;  // Value('d'): zero
  CHECK(d.value() == 0.0);
  d.set(3.1415927);
  CHECK(d.value() == 3.1415927);
  typename B::template Value<Point> p(Point{1, 2.5});
  CHECK(p.value().x == 1);
  CHECK(p.get_obj().y == 2.5);
  typename B::template RawValue<int> r(7);
  r.set(r.value() + 1);
  CHECK(r.get_obj() == 8);
}

TEST_CASE_TEMPLATE("Sync.Value.ChildWritesParentReads", B, Processes, Threads) {
  typename B::template Value<double> num(0.0);
  synctest::Worker<B> child([&] {
    num.set(3.1415927);
    return true;
  });
  CHECK(child.join());
  CHECK(num.value() == 3.1415927);
}

TEST_CASE_TEMPLATE("Sync.Value.IncrementUnderLock", B, Processes, Threads) {
  // Python: `with v.get_lock(): v.value += 1` from several workers.
  typename B::template Value<long> v(0);
  const int failures = synctest::run_workers<B>(4, [&](int) {
    for (int i = 0; i < 5000; ++i) {
      std::lock_guard g(v.get_lock());
      v.set(v.value() + 1);  // value()/set() re-enter the RLock
    }
    return true;
  });
  CHECK(failures == 0);
  CHECK(v.value() == 20000);
}

TEST_CASE_TEMPLATE("Sync.Value.SharedLockGuardsSeveralObjects", B, Processes, Threads) {
  // Python: `lock = RLock(); a = Value('l', 0, lock=lock); b = Array('l', 4, lock=lock)`: one lock
  // makes a transfer between them atomic, and each object's own accesses take that same lock.
  typename B::RLock lock;
  typename B::template Value<long> from(1000, lock);
  typename B::template Array<long> to(4, lock);
  typename B::template Array<long> listed({5, 6}, lock);
  typename B::template Array<long> ranged(std::views::iota(0L, 3L), lock);
  CHECK(&from.get_lock() != &lock);  // a view of it, not the same object...
  {
    std::lock_guard g(lock);  // ...but the same lock: held here, it is held for everyone
    CHECK(from.get_lock().is_owned());
    CHECK(to.get_lock().is_owned());
    CHECK(listed.get_lock().count() == 1);
  }
  CHECK(listed.to_vector() == std::vector<long>{5, 6});
  CHECK(ranged.to_vector() == std::vector<long>{0, 1, 2});
  const int failures = synctest::run_workers<B>(4, [&](int w) {
    for (int i = 0; i < 1000; ++i) {
      std::lock_guard g(lock);
      from.set(from.value() - 1);  // value()/set() re-enter the shared lock
      to.set(static_cast<std::size_t>(w), to.get(static_cast<std::size_t>(w)) + 1);
    }
    return true;
  });
  CHECK(failures == 0);
  // A reader holding the lock never sees the sum off: the transfer is atomic.
  const auto v = to.to_vector();
  CHECK(from.value() + std::accumulate(v.begin(), v.end(), 0L) == 1000);
  CHECK(from.value() == 1000 - 4000);
  // An unrelated object keeps its own lock.
  typename B::template Value<long> own(0);
  std::lock_guard g(lock);
  CHECK_FALSE(own.get_lock().is_owned());
}

TEST_CASE_TEMPLATE("Sync.Array.Construction", B, Processes, Threads) {
  typename B::template Array<int> zeros(10);  // Array('i', 10)
  CHECK(zeros.size() == 10);
  CHECK(std::all_of(zeros.begin(), zeros.end(), [](int x) { return x == 0; }));
  typename B::template Array<int> listed{1, 2, 3};
  CHECK(listed.to_vector() == std::vector<int>{1, 2, 3});
  typename B::template Array<int> ranged(std::views::iota(0, 10));  // Array('i', range(10))
  CHECK(ranged.size() == 10);
  CHECK(ranged[9] == 9);
  const std::vector<double> source{0.5, 1.5};
  typename B::template RawArray<double> from_vector(source);
  CHECK(from_vector.to_vector() == source);
  typename B::template Array<char> empty(0);
  CHECK(empty.empty());
  CHECK(empty.to_vector().empty());
}

TEST_CASE_TEMPLATE("Sync.Array.SizeThatCannotFitIsValueError", B, Processes, Threads) {
  // Array('i', 1 << 40) would commit 4 TiB page by page until the OOM killer fired.
  volatile std::size_t shift = 40;  // opaque: no compile-time "huge memset" warning
  const std::size_t n = std::size_t{1} << shift;
  std::string message;
  try {
    typename B::template Array<int> huge(n);
  } catch (const procpool::ValueError& e) {
    message = e.what();
  }
  CHECK(message.find(std::to_string(n) + " elements") != std::string::npos);
  CHECK(message.find("available") != std::string::npos);
  shift = 62;
  CHECK_THROWS_AS(typename B::template RawArray<double>(std::size_t{1} << shift), procpool::ValueError);
  typename B::template Array<int> fine(1 << 20);  // a reasonable size still works
  CHECK(fine.size() == (1u << 20));
}

TEST_CASE_TEMPLATE("Sync.Array.AccessAndErrors", B, Processes, Threads) {
  typename B::template Array<int> a(std::views::iota(0, 5));
  CHECK(a.get(2) == 2);
  a.set(2, 20);
  CHECK(a[2] == 20);
  a.at(3) = 30;
  CHECK(a.get(3) == 30);
  CHECK_THROWS_AS((void)a.get(5), procpool::IndexError);
  CHECK_THROWS_AS(a.set(5, 1), procpool::IndexError);
  CHECK_THROWS_AS((void)a.at(99), procpool::IndexError);
  std::span<int> s = a.span();
  CHECK(s.size() == 5);
  CHECK(std::accumulate(s.begin(), s.end(), 0) == 0 + 1 + 20 + 30 + 4);
  int sum = 0;
  for (int x : a) sum += x;
  CHECK(sum == 55);
  CHECK(a.get_obj().data() == a.data());
}

TEST_CASE_TEMPLATE("Sync.Array.ChildNegates", B, Processes, Threads) {
  // The multiprocessing docs' example: a child negates Array('i', range(10)).
  typename B::template Array<int> arr(std::views::iota(0, 10));
  synctest::Worker<B> child([&] {
    std::lock_guard g(arr.get_lock());
    for (auto& x : arr) x = -x;
    return true;
  });
  CHECK(child.join());
  CHECK(arr.to_vector() == std::vector<int>{0, -1, -2, -3, -4, -5, -6, -7, -8, -9});
}

TEST_CASE_TEMPLATE("Sync.Array.ConcurrentUpdatesUnderLock", B, Processes, Threads) {
  typename B::template Array<long> a(8);
  const int failures = synctest::run_workers<B>(4, [&](int w) {
    for (int i = 0; i < 2000; ++i) {
      std::lock_guard g(a.get_lock());
      a[static_cast<std::size_t>(i % 8)] += w + 1;
    }
    return true;
  });
  CHECK(failures == 0);
  const auto v = a.to_vector();
  CHECK(std::accumulate(v.begin(), v.end(), 0L) == 2000L * (1 + 2 + 3 + 4));
}
