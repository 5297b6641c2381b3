// The doctest entry point of every test binary: procpool::init() comes first so that a spawned
// or forkserver child of a test becomes the worker instead of re-running the tests.
#define DOCTEST_CONFIG_IMPLEMENT
// Forked children inherit signal handlers: doctest's crash handler would report a child's
// SIGTERM as a crash of the test. meson reports a test binary killed by a signal anyway.
#define DOCTEST_CONFIG_NO_POSIX_SIGNALS
#include <doctest/doctest.h>

#include <procpool/procpool.hpp>

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  doctest::Context context(argc, argv);
  return context.run();
}
