#pragma once
// What every broker client does at start (the `procpool` commands and the cluster Pool): a checked URL,
// a checked server, and the clocks and host names of the protocol.
#include "broker/connection.hpp"
#include "broker/url.hpp"

#include <string>

namespace procpool::broker {

/// Parses the URL (password from PROCPOOL_REDIS_PASSWORD when not in it), applies the security
/// rules. Throws ConfigError with the spec's messages.
BrokerUrl checked_url(const std::string& text, bool insecure);
/// Connects and checks the server (maxmemory-policy noeviction) and the protocol version under
/// `prefix` (a queue's key prefix; `queue` names it in messages). Throws ConfigError.
void check_server(Connection& connection, const std::string& queue, const std::string& prefix);
void check_server(Connection& connection, const std::string& queue);

/// Monotonic milliseconds (heartbeat ages).
long long monotonic_ms();
/// The host name for joblogs and status.
std::string host_name();

} // namespace procpool::broker
