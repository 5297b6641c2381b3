// Workers as separate "hosts": their own network and UTS namespaces (unshare -n -u), own host names.
// Test 9 needs no network (a unix socket is a file); test 10 builds a veth pair between two namespaces
// and cuts one side's link. Both need root; skipped with a message otherwise.
#include "broker_helpers.hpp"

using namespace brokertest;

namespace {

bool namespaces_usable() {
  if (::geteuid() != 0) return false;
  TempDir dir;
  return sh(dir, "unshare -n -u true").exit_code == 0;
}

#define REQUIRE_NAMESPACES()                                                   \
  if (!namespaces_usable()) {                                                  \
    MESSAGE("SKIP: needs root for network namespaces (unshare -n)");           \
    return;                                                                    \
  }

std::string sh_quote(const std::string& s) { return "'" + s + "'"; }

} // namespace

TEST_CASE("Broker.Netns.ThreeHosts") {
  REQUIRE_NAMESPACES();
  RedisServer redis;
  TempDir dir;
  std::string batch;
  for (int i = 0; i < 30; ++i) batch += "sleep 0.1\n";
  write_file(dir / "b.txt", batch);
  std::vector<std::unique_ptr<Spawned>> hosts;
  for (const std::string name : {"nsA", "nsB", "nsC"})
    hosts.push_back(std::make_unique<Spawned>(
        dir,
        std::vector<std::string>{"unshare", "-n", "-u", "sh", "-c",
                                 "hostname " + name + " && exec " + sh_quote(cli()) + " worker --broker " +
                                     sh_quote(redis.unix_url()) + " -j 2 --lease 1s --exit-when-idle 5s"},
        name));
  REQUIRE(eventually([&] { return redis.cmd("ZCARD pp:{default}:workers") == ":3"; }, 5000ms));
  const auto r = sh(dir, "$P run --broker " + redis.unix_url() + " --joblog j.log b.txt; echo rc=$?");
  CHECK(r.out == "rc=0\n");
  std::set<std::string> hosts_seen;
  for (const auto& row : joblog_rows(dir / "j.log")) hosts_seen.insert(row.at(1));
  CHECK(hosts_seen == std::set<std::string>{"nsA", "nsB", "nsC"});
}

TEST_CASE("Broker.Netns.Partition") {
  REQUIRE_NAMESPACES();
  TempDir dir;
  // Two namespaces held open by sleepers; a veth pair between them, 10.213.77.1 (Redis, A) and .2 (B).
  Spawned ns1(dir, {"unshare", "-n", "sleep", "120"}, "ns1");
  Spawned ns2(dir, {"unshare", "-n", "sleep", "120"}, "ns2");
  REQUIRE(eventually([&] { return fs::read_symlink("/proc/" + std::to_string(ns1.pid) + "/ns/net") !=
                                  fs::read_symlink("/proc/self/ns/net") &&
                                  fs::read_symlink("/proc/" + std::to_string(ns2.pid) + "/ns/net") !=
                                  fs::read_symlink("/proc/self/ns/net"); }, 2000ms));
  const std::string n1 = "nsenter -t " + std::to_string(ns1.pid) + " -n ";
  const std::string n2 = "nsenter -t " + std::to_string(ns2.pid) + " -n ";
  const auto net = sh(dir, "ip link add ppA netns " + std::to_string(ns1.pid) + " type veth peer name ppB netns " +
                               std::to_string(ns2.pid) + " && " + n1 + "ip addr add 10.213.77.1/24 dev ppA && " + n1 +
                               "ip link set ppA up && " + n1 + "ip link set lo up && " + n2 +
                               "ip addr add 10.213.77.2/24 dev ppB && " + n2 + "ip link set ppB up && " + n2 +
                               "ip link set lo up");
  REQUIRE_MESSAGE(net.exit_code == 0, net.err);
  RedisServer redis({}, "s3cret", {"nsenter", "-t", std::to_string(ns1.pid), "-n"}, "10.213.77.1 127.0.0.1");
  const std::string port = std::to_string(redis.port);
  ::setenv("PROCPOOL_REDIS_PASSWORD", "s3cret", 1);
  std::string batch;
  for (int i = 0; i < 16; ++i)
    batch += "sleep 0.5; echo $PARALLEL_SEQ $PROCPOOL_ATTEMPT $PROCPOOL_HOST ${PROCPOOL_REDIS_PASSWORD-hidden}\n";
  write_file(dir / "b.txt", batch);
  Spawned a(dir, {"nsenter", "-t", std::to_string(ns1.pid), "-n", cli(), "worker", "--broker",
                  "redis://127.0.0.1:" + port + "/0", "-j", "2", "--lease", "1s", "--exit-when-idle", "10s",
                  "--host-name", "hostA"}, "a");
  Spawned b(dir, {"nsenter", "-t", std::to_string(ns2.pid), "-n", cli(), "worker", "--broker",
                  "redis://10.213.77.1:" + port + "/0", "-j", "2", "--lease", "1s", "--exit-when-idle", "10s",
                  "--host-name", "hostB"}, "b");
  Spawned run(dir, {"nsenter", "-t", std::to_string(ns1.pid), "-n", cli(), "run", "--broker",
                    "redis://127.0.0.1:" + port + "/0", "--joblog", "j.log", "b.txt"}, "run");
  REQUIRE(eventually([&] { return read_file(dir / "run").find("hostB") != std::string::npos; }, 8000ms));
  CHECK(sh(dir, n2 + "ip link set ppB down").exit_code == 0);
  std::this_thread::sleep_for(3s);
  CHECK(sh(dir, n2 + "ip link set ppB up").exit_code == 0);
  CHECK(run.wait(40s) == 0);
  ::unsetenv("PROCPOOL_REDIS_PASSWORD");
  const auto counts = seq_counts(dir / "j.log");
  CHECK(counts.size() == 16);
  for (const auto& [seq, count] : counts) CHECK(count == 1);
  CHECK(read_file(dir / "run").find("s3cret") == std::string::npos);  // never in the jobs' environment
  CHECK(read_file(dir / "b.err").find("s3cret") == std::string::npos);
  // B's leases were reaped: its jobs ran again (attempt 2), and its late completions were refused.
  CHECK(read_file(dir / "run").find(" 2 ") != std::string::npos);
  CHECK(eventually([&] { return read_file(dir / "b.err").find("procpool worker: lease lost; killed ") != std::string::npos; },
                   5000ms));
}
