#pragma once
// The sync examples run on processes or on threads, chosen by their first argument
// (threads | fork | spawn | forkserver | processes). Each example's body is a template over
// one of the backend bundles (procpool::Processes / procpool::Threads), the C++ spelling of
// `import multiprocessing as mp` versus `import multiprocessing.dummy as mp`.
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <chrono>
#include <string>
#include <string_view>
#include <thread>

#include <unistd.h>

#include <procpool/procpool.hpp>

namespace sync_examples {

/// The backends of procpool/backend.hpp, plus the name of the calling worker (Python's
/// current_process().name / current_thread().name), which the examples print.
struct Processes : procpool::Processes {
  static std::string current_name() { return procpool::current_process().name; }
};

struct Threads : procpool::Threads {
  static std::string current_name() { return procpool::threading::current_thread().name(); }
};

/// Prints one whole line with a single write(), so lines from concurrent processes or
/// threads never interleave.
[[gnu::format(printf, 1, 2)]] inline void say(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  const int n = std::vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  std::size_t len = std::min<std::size_t>(static_cast<std::size_t>(n), sizeof buf - 2);
  buf[len++] = '\n';
  std::size_t off = 0;
  while (off < len) {
    const ssize_t w = ::write(1, buf + off, len - off);
    if (w <= 0) return;
    off += static_cast<std::size_t>(w);
  }
}

/// Runs `body<Processes>()` or `body<Threads>()` as the first argument asks; a process mode
/// also sets the start method. Returns the exit status.
template <class Body>
int run_in_mode(int argc, char** argv, Body body) {
  const std::string_view mode = argc > 1 ? argv[1] : "threads";
  if (mode == "threads") return body(Threads{});
  if (mode != "processes") procpool::set_start_method(mode);
  return body(Processes{});
}

} // namespace sync_examples

namespace sync_examples {
/// Sleeps `seconds` (the examples scale the seed's sleeps by their second argument).
inline void pause_for(double seconds) { std::this_thread::sleep_for(std::chrono::duration<double>(seconds)); }
/// The time scale from argv[2] (default 1: the seed's timings).
inline double time_scale(int argc, char** argv) { return argc > 2 ? std::atof(argv[2]) : 1.0; }
} // namespace sync_examples
