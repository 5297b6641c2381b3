// Enqueue-to-result latency through the broker, one job at a time (bench/broker.sh): enqueues a job with
// the enqueue script, blocks in XREAD on the run's log until its result is there, and prints the p50 and
// p99 in milliseconds. A `procpool worker` must serve the queue.
// Usage: bench-broker-latency URL QUEUE N COMMAND
#include "broker/connection.hpp"
#include "broker/scripts.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace broker = procpool::broker;

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s URL QUEUE N COMMAND\n", argv[0]);
    return 2;
  }
  const auto url = broker::parse_broker_url(argv[1], std::getenv("PROCPOOL_REDIS_PASSWORD"));
  const std::string prefix = broker::key_prefix(argv[2]);
  const int n = std::atoi(argv[3]);
  broker::Connection conn(url, 10.0);
  const std::string run = "bench" + std::to_string(::getpid());
  conn.eval(broker::kCreateRun, prefix, {run, "tries", "1", "wopts", "0 1 0 16777216"});
  std::string last = "0-0";
  std::vector<double> ms;
  for (int i = 1; i <= n; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    conn.eval(broker::kEnqueue, prefix, {run, std::to_string(i), "0", std::to_string(i), argv[4]});
    for (;;) {
      const broker::Reply r = conn.call({"XREAD", "BLOCK", "0", "STREAMS", prefix + "run:" + run + ":log", last});
      if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
        const redisReply* entries = r->element[0]->element[1];
        last = broker::reply_text(entries->element[entries->elements - 1]->element[0]);
        break;
      }
    }
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  conn.eval(broker::kEndRun, prefix, {run, "1000"});
  std::sort(ms.begin(), ms.end());
  std::printf("%.3f %.3f\n", ms[ms.size() / 2], ms[std::min(ms.size() - 1, ms.size() * 99 / 100)]);
  return 0;
}
