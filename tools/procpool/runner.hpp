#pragma once
// The job runner: one single-threaded poll loop over a signalfd, the input and the jobs' pipes.
#include "options.hpp"

namespace procpool::cli {

/// Runs the jobs `options` describe; returns procpool's exit status (GNU parallel's convention).
/// Throws UsageError for bad input found before any job starts (missing file, malformed joblog).
int run_jobs(const Options& options);

} // namespace procpool::cli
