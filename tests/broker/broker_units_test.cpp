// The broker's parsers, called directly through the command's library: URLs, redaction, the loopback
// rule, queue names, and the run options that travel with --broker.
#include "broker/url.hpp"
#include "options.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace cli = procpool::cli;
namespace broker = procpool::broker;
using Args = std::vector<std::string>;

TEST_CASE("Broker.Units.UrlParse") {
  auto u = broker::parse_broker_url("redis://head", nullptr);
  CHECK(u.host == "head");
  CHECK(u.port == 6379);
  CHECK(u.db == 0);
  CHECK(!u.password);
  CHECK(u.redacted() == "redis://head:6379/0");

  u = broker::parse_broker_url("redis://alice:p%40ss@10.0.0.5:7000/3", nullptr);
  CHECK(u.user == "alice");
  CHECK(*u.password == "p@ss");
  CHECK(u.password_in_url);
  CHECK(u.port == 7000);
  CHECK(u.db == 3);
  CHECK(u.redacted() == "redis://alice:***@10.0.0.5:7000/3");
  CHECK(u.without_credentials() == "redis://10.0.0.5:7000/3");

  u = broker::parse_broker_url("redis://[::1]:6380/1", "fromenv");
  CHECK(u.host == "::1");
  CHECK(u.port == 6380);
  CHECK(*u.password == "fromenv");
  CHECK(!u.password_in_url);
  CHECK(u.redacted() == "redis://:***@[::1]:6380/1");

  u = broker::parse_broker_url("redis+unix:///run/redis.sock?db=2", nullptr);
  CHECK(u.unix_socket);
  CHECK(u.path == "/run/redis.sock");
  CHECK(u.db == 2);
  CHECK(u.redacted() == "redis+unix:///run/redis.sock?db=2");
}

TEST_CASE("Broker.Units.UrlErrors") {
  CHECK_THROWS_WITH_AS(broker::parse_broker_url("http://x", nullptr), "--broker: 'http://x' is not a redis:// or redis+unix:// URL",
                       broker::ConfigError);
  CHECK_THROWS_WITH_AS(broker::parse_broker_url("redis://h:99999", nullptr), "--broker: 'redis://h:99999': the port must be at most 65535",
                       broker::ConfigError);
  CHECK_THROWS_WITH_AS(broker::parse_broker_url("redis://h/x", nullptr), "--broker: 'redis://h/x': the database number must be a number",
                       broker::ConfigError);
  CHECK_THROWS_WITH_AS(broker::parse_broker_url("redis://:6379", nullptr), "--broker: 'redis://:6379' names no host",
                       broker::ConfigError);
  CHECK_THROWS_WITH_AS(broker::parse_broker_url("redis+unix://rel.sock", nullptr),
                       "--broker: 'redis+unix://rel.sock': redis+unix:// needs an absolute socket path", broker::ConfigError);
}

TEST_CASE("Broker.Units.Loopback") {
  for (const char* url : {"redis://localhost", "redis://127.0.0.1", "redis://127.9.8.7:1/0", "redis://[::1]",
                          "redis+unix:///tmp/r.sock"})
    CHECK_MESSAGE(broker::parse_broker_url(url, nullptr).loopback(), url);
  for (const char* url : {"redis://10.0.0.5", "redis://head", "redis://128.0.0.1", "redis://[fe80::1]"})
    CHECK_MESSAGE(!broker::parse_broker_url(url, nullptr).loopback(), url);
  CHECK_THROWS_AS(broker::check_broker_security(broker::parse_broker_url("redis://head", nullptr), false), broker::ConfigError);
  CHECK_NOTHROW(broker::check_broker_security(broker::parse_broker_url("redis://head", nullptr), true));
  CHECK_NOTHROW(broker::check_broker_security(broker::parse_broker_url("redis://head", "pw"), false));
}

TEST_CASE("Broker.Units.QueueNames") {
  CHECK_NOTHROW(broker::check_queue_name("default"));
  CHECK_NOTHROW(broker::check_queue_name("gpu.night-2_a"));
  CHECK_THROWS_AS(broker::check_queue_name(""), broker::ConfigError);
  CHECK_THROWS_AS(broker::check_queue_name("a}b"), broker::ConfigError);
  CHECK_THROWS_AS(broker::check_queue_name(std::string(65, 'q')), broker::ConfigError);
}

TEST_CASE("Broker.Units.RunOptions") {
  const auto opt = cli::parse_run_options(Args{"--broker", "redis://h", "--queue", "q", "--max-queued", "50",
                                               "--max-crashes", "2", "--max-output", "1M", "--env", "A", "--env", "B",
                                               "--no-worker-timeout", "30s", "--run-ttl", "1h", "b.txt"});
  REQUIRE(opt);
  REQUIRE(opt->broker);
  CHECK(opt->broker->queue == "q");
  CHECK(opt->broker->max_queued == 50);
  CHECK(opt->broker->max_crashes == 2);
  CHECK(opt->broker->max_output == 1024 * 1024);
  CHECK(opt->broker->env == std::vector<std::string>{"A", "B"});
  CHECK(opt->broker->no_worker_timeout == 30);
  CHECK(opt->broker->run_ttl == 3600);
  CHECK(opt->batch_file == "b.txt");
  CHECK_THROWS_WITH_AS(cli::parse_run_options(Args{"--queue", "q", "b"}),
                       "--queue, --max-queued, --max-crashes, --max-output, --no-worker-timeout, --run-ttl and "
                       "--insecure-broker need --broker URL",
                       cli::UsageError);
  CHECK_THROWS_WITH_AS(cli::parse_run_options(Args{"--broker", "redis://h", "--max-output", "1x", "b"}),
                       "--max-output: '1x' is not a number", cli::UsageError);
  // Without --broker the local options stay as they were.
  CHECK_NOTHROW(cli::parse_run_options(Args{"-j", "2", "--line-buffer", "--timeout", "200%", "b"}));
}

TEST_CASE("Broker.Units.WorkerOptions") {
  const auto w = cli::parse_worker_options(Args{"--broker", "redis://h", "-j", "3", "--lease", "2s", "--exit-when-idle",
                                                "1m", "--max-jobs", "7", "--host-name", "n1"});
  REQUIRE(w);
  CHECK(w->jobs == 3);
  CHECK(w->lease_seconds == 2);
  CHECK(w->exit_when_idle == 60);
  CHECK(w->max_jobs == 7);
  CHECK(w->host_name == "n1");
  CHECK_THROWS_WITH_AS(cli::parse_worker_options(Args{"--broker", "redis://h", "--lease", "0.1s"}),
                       "--lease: '0.1s' must be 0.5s to 1h", cli::UsageError);
  CHECK_THROWS_AS(cli::parse_worker_options(Args{"-j", "2"}), cli::UsageError);  // --broker is required
}
