// What every broker client shares: the checked URL and server, clocks, the host name.
#include "broker/server.hpp"
#include "broker/scripts.hpp"

#include <hiredis/hiredis.h>

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <iostream>

#include <unistd.h>

namespace procpool::broker {

BrokerUrl checked_url(const std::string& text, bool insecure) {
  BrokerUrl url = parse_broker_url(text, std::getenv("PROCPOOL_REDIS_PASSWORD"));
  check_broker_security(url, insecure);
  return url;
}

void check_server(Connection& connection, const std::string& queue) { check_server(connection, queue, key_prefix(queue)); }

void check_server(Connection& connection, const std::string& queue, const std::string& prefix) {
  try {
    connection.connect();
  } catch (const BrokerDown& e) {
    throw ConfigError(fmt::format("cannot connect to {}: {}", connection.url().redacted(), e.what()));
  }
  // Evicting a job or a lease would lose it silently: refuse unless noeviction.
  const Reply policy = connection.command({"CONFIG", "GET", "maxmemory-policy"});
  if (policy->type == REDIS_REPLY_ARRAY && policy->elements == 2) {
    const std::string value = reply_text(policy->element[1]);
    if (value != "noeviction")
      throw ConfigError(fmt::format("{} has maxmemory-policy {}; procpool needs noeviction", connection.url().redacted(), value));
  } else {
    std::cerr << fmt::format("procpool: warning: cannot read maxmemory-policy of {} ({}); make sure it is noeviction\n",
                             connection.url().redacted(), reply_text(policy.get()));
  }
  try {
    connection.eval(kCheckProto, prefix, {std::to_string(kProtocol)});
  } catch (const ReplyError& e) {
    const std::string what = e.what();
    const auto at = what.find("PROTO ");
    if (at == std::string::npos) throw;
    throw ConfigError(fmt::format("queue '{}' speaks broker protocol {}; this procpool speaks {}", queue,
                                 what.substr(at + 6), kProtocol));
  }
}

long long monotonic_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "localhost";
  return name;
}

} // namespace procpool::broker
