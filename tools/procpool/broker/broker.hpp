#pragma once
// The three broker commands: `procpool worker`, `procpool run --broker`, `procpool status`.
// Each returns procpool's exit status; a bad command line, an unreachable broker at start, a refused
// configuration throw UsageError or broker::ConfigError (exit 255 with the message).
#include "options.hpp"

#include "broker/server.hpp"

#include <string>

namespace procpool::cli::broker {

// The client side the cluster Pool shares lives in the library (lib/broker/).
using namespace procpool::broker;

int run_worker(const WorkerOptions& options);
int submit_run(const Options& options);
int show_status(const StatusOptions& options);

} // namespace procpool::cli::broker
