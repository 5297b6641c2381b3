#pragma once
// The three broker commands: `procpool worker`, `procpool run --broker`, `procpool status`.
// Each returns procpool's exit status; a bad command line, an unreachable broker at start, a refused
// configuration throw UsageError (exit 255 with the message).
#include "options.hpp"

#include <string>

namespace procpool::cli::broker {

int run_worker(const WorkerOptions& options);
int submit_run(const Options& options);
int show_status(const StatusOptions& options);

/// Parses the URL, applies the security rules, connects and checks the server (maxmemory-policy
/// noeviction, the queue's protocol version). Throws UsageError with the spec's messages.
class Connection;
struct BrokerUrl;
BrokerUrl checked_url(const std::string& text, bool insecure);
void check_server(Connection& connection, const std::string& queue);

/// Monotonic milliseconds (heartbeat ages).
long long monotonic_ms();
/// The host name for joblogs and status.
std::string host_name();

} // namespace procpool::cli::broker
