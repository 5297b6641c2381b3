#pragma once
// Helpers for the cluster Pool's tests: a real redis-server (brokertest::RedisServer) and workers that
// are this very test binary started as `--procpool-worker URL` (doctest_main calls procpool::init first).
#include "../broker/broker_helpers.hpp"

#include <procpool/cluster.hpp>

#include <memory>
#include <string>
#include <vector>

namespace clustertest {

using namespace brokertest;

/// This test binary's path (workers are the program itself).
inline std::string self_exe() {
  char path[4096] = {};
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  REQUIRE(n > 0);
  return std::string(path, static_cast<std::size_t>(n));
}

/// A worker process: `program --procpool-worker URL -j N --queue Q --lease L [more]`.
inline std::unique_ptr<BackgroundProgram> start_worker(const TempDir& dir, const std::string& url, const std::string& queue,
                                                        int jobs, const std::string& name, const std::string& lease = "10s",
                                                        std::vector<std::string> more = {},
                                                        const std::string& program = self_exe()) {
  std::vector<std::string> args{program, "--procpool-worker", url, "-j", std::to_string(jobs), "--queue", queue, "--lease", lease};
  args.insert(args.end(), more.begin(), more.end());
  return std::make_unique<BackgroundProgram>(dir, args, name);
}

/// Live workers registered on a queue's pool prefix (ZCOUNT of the workers set), via redis_inline.
inline long live_workers(const RedisServer& redis, const std::string& queue) {
  const std::string reply = redis.cmd("ZCARD pp:{" + queue + "}:pool:workers");
  return reply.size() > 1 && reply[0] == ':' ? std::stol(reply.substr(1)) : -1;
}

/// Waits until `n` workers are registered on `queue`.
inline void wait_for_workers(const RedisServer& redis, const std::string& queue, long n) {
  REQUIRE_MESSAGE(eventually([&] { return live_workers(redis, queue) >= n; }, 10000ms),
                  "workers did not register within 10 s");
}

inline procpool::cluster::ClusterOptions options_for(const RedisServer& redis, const std::string& queue, int processes = 2) {
  procpool::cluster::ClusterOptions o;
  o.broker = redis.url();
  o.queue = queue;
  o.processes = processes;
  return o;
}

} // namespace clustertest
