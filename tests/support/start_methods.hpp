#pragma once
// Start-method tags for TEST_CASE_TEMPLATE, so a process test runs under fork, spawn and
// forkserver alike: `TEST_CASE_TEMPLATE("...", M, ALL_START_METHODS) { Process p(options<M>(), ...); }`.
#include <string>
#include <utility>

#include <procpool/process.hpp>

namespace testing {

struct Fork {
  static constexpr procpool::StartMethod method = procpool::StartMethod::Fork;
};
struct Spawn {
  static constexpr procpool::StartMethod method = procpool::StartMethod::Spawn;
};
struct Forkserver {
  static constexpr procpool::StartMethod method = procpool::StartMethod::Forkserver;
};

#define ALL_START_METHODS testing::Fork, testing::Spawn, testing::Forkserver

/// ProcessOptions for start method M, with an optional process name.
template <class M>
procpool::ProcessOptions options(std::string name = {}) {
  return procpool::ProcessOptions{.name = std::move(name), .daemon = std::nullopt, .start_method = M::method};
}

} // namespace testing
