// The same Pool cases over the three backends (threads, local processes, hosts through Redis): the
// cluster Pool keeps Pool's semantics. The cluster's workers are this test binary itself, started as
// `--procpool-worker URL` against a redis-server the test starts.
#include "cluster_helpers.hpp"

#include <procpool/procpool.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

using namespace clustertest;
namespace cluster = procpool::cluster;

namespace {

int square(int x) { return x * x; }
int add(int a, int b) { return a + b; }
std::string shout(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s + "!";
}
int fail_on_seven(int x) {
  if (x == 7) throw std::invalid_argument("seven is not allowed");
  return x;
}
std::vector<double> scale(std::vector<double> v, double k) {
  for (double& d : v) d *= k;
  return v;
}

/// One redis-server and two workers (-j 1 each) for the whole binary: the equivalence cases share them.
struct SharedCluster {
  TempDir dir;
  RedisServer redis;
  std::vector<std::unique_ptr<BackgroundProgram>> workers;
  SharedCluster() {
    workers.push_back(start_worker(dir, redis.url(), "eq", 1, "w1.out"));
    workers.push_back(start_worker(dir, redis.url(), "eq", 1, "w2.out"));
    wait_for_workers(redis, "eq", 2);
  }
};
SharedCluster& shared_cluster() {
  static SharedCluster cluster;
  return cluster;
}

template <class P>
std::unique_ptr<P> make_pool() {
  if constexpr (std::is_same_v<P, cluster::Pool>) return std::make_unique<P>(options_for(shared_cluster().redis, "eq"));
  else return std::make_unique<P>(2);
}

} // namespace

#define POOL_KINDS procpool::dummy::Pool, procpool::Pool, procpool::cluster::Pool

TEST_CASE_TEMPLATE("Pool.Cluster.Equivalence.ApplyAndMap", P, POOL_KINDS) {
  auto pool = make_pool<P>();
  CHECK(pool->apply(square, 12) == 144);
  CHECK(pool->apply(add, 2, 40) == 42);
  CHECK(pool->apply(shout, std::string("hi")) == "HI!");
  CHECK(pool->apply([](int a) { return a - 1; }, 10) == 9);  // a captureless lambda
  std::vector<int> items(1000);
  std::iota(items.begin(), items.end(), 0);
  const std::vector<int> squares = pool->map(square, items);
  REQUIRE(squares.size() == items.size());
  for (int i = 0; i < 1000; ++i) CHECK(squares[static_cast<std::size_t>(i)] == i * i);
  CHECK(pool->map(square, items, 7) == squares);  // explicit chunksize
  const std::vector<std::tuple<int, int>> pairs{{1, 2}, {3, 4}, {5, 6}};
  CHECK(pool->starmap(add, pairs) == std::vector<int>{3, 7, 11});
  const std::vector<std::string> words{"a", "bc", "def"};
  CHECK(pool->map(shout, words) == std::vector<std::string>{"A!", "BC!", "DEF!"});
  CHECK(pool->map(square, std::vector<int>{}).empty());
}

TEST_CASE_TEMPLATE("Pool.Cluster.Equivalence.AsyncAndCallbacks", P, POOL_KINDS) {
  auto pool = make_pool<P>();
  std::atomic<int> called{0};
  auto r = pool->apply_async(procpool::Callbacks<int>{[&](const int& v) { called = v; }, {}}, square, 9);
  CHECK(r.get() == 81);
  CHECK(called.load() == 81);
  CHECK(r.successful());
  auto m = pool->map_async(square, std::vector<int>{1, 2, 3});
  CHECK(m.get() == std::vector<int>{1, 4, 9});
  std::vector<procpool::AsyncResult<int>> many;
  for (int i = 0; i < 50; ++i) many.push_back(pool->apply_async(square, i));
  for (int i = 0; i < 50; ++i) CHECK(many[static_cast<std::size_t>(i)].get() == i * i);
}

TEST_CASE_TEMPLATE("Pool.Cluster.Equivalence.Imap", P, POOL_KINDS) {
  auto pool = make_pool<P>();
  std::vector<int> items(300);
  std::iota(items.begin(), items.end(), 0);
  std::vector<int> ordered;
  for (int v : pool->imap(square, items)) ordered.push_back(v);
  REQUIRE(ordered.size() == items.size());
  for (int i = 0; i < 300; ++i) CHECK(ordered[static_cast<std::size_t>(i)] == i * i);
  std::multiset<int> unordered;
  for (int v : pool->imap_unordered(square, items, 4)) unordered.insert(v);
  CHECK(unordered == std::multiset<int>(ordered.begin(), ordered.end()));
}

TEST_CASE_TEMPLATE("Pool.Cluster.Equivalence.ErrorsAsRemoteError", P, POOL_KINDS) {
  auto pool = make_pool<P>();
  try {
    (void)pool->apply(fail_on_seven, 7);
    FAIL("no error");
  } catch (const procpool::RemoteError& e) {
    CHECK(e.type_name() == "std::invalid_argument");
    CHECK(e.message() == "seven is not allowed");
  }
  std::vector<int> items(20);
  std::iota(items.begin(), items.end(), 0);
  CHECK_THROWS_AS((void)pool->map(fail_on_seven, items), procpool::RemoteError);
  std::atomic<bool> error_seen{false};
  auto r = pool->apply_async(procpool::Callbacks<int>{{}, [&](const std::exception&) { error_seen = true; }}, fail_on_seven, 7);
  r.wait();
  CHECK_FALSE(r.successful());
  CHECK(error_seen.load());
  CHECK(pool->apply(fail_on_seven, 3) == 3);  // the pool goes on
}

TEST_CASE_TEMPLATE("Pool.Cluster.Equivalence.Lifecycle", P, POOL_KINDS) {
  auto pool = make_pool<P>();
  auto pending = pool->map_async(square, std::vector<int>{1, 2, 3, 4});
  CHECK_THROWS_AS(pool->join(), procpool::ValueError);  // still running
  pool->close();
  CHECK_THROWS_AS((void)pool->apply_async(square, 1), procpool::ValueError);
  pool->join();  // waits for the queued work
  CHECK(pending.get() == std::vector<int>{1, 4, 9, 16});

  auto other = make_pool<P>();
  other->terminate();
  CHECK_THROWS_AS((void)other->apply_async(square, 1), procpool::ValueError);
  other->join();
}

TEST_CASE_TEMPLATE("Pool.Cluster.Equivalence.LargeArguments", P, POOL_KINDS) {
  auto pool = make_pool<P>();
  std::vector<double> big(131072);  // 1 MiB
  std::iota(big.begin(), big.end(), 0.0);
  const std::vector<double> out = pool->apply(scale, big, 2.0);
  REQUIRE(out.size() == big.size());
  CHECK(out.front() == 0.0);
  CHECK(out[1] == 2.0);
  CHECK(out.back() == 2.0 * static_cast<double>(big.size() - 1));
}
