// The doctest entry point of every test binary: procpool::init() comes first so that a spawned
// or forkserver child of a test becomes the worker instead of re-running the tests.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <procpool/procpool.hpp>

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  return context.run();
}
