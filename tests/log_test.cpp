#include <doctest/doctest.h>

#include <cstdlib>
#include <memory>
#include <sstream>

#include <procpool/log.hpp>
#include <spdlog/sinks/ostream_sink.h>

// Runs first (doctest keeps file order): PROCPOOL_LOG is unset under meson test, so silent.
TEST_CASE("Log.Default.SilentWithoutEnv") {
  REQUIRE(std::getenv("PROCPOOL_LOG") == nullptr);
  CHECK(procpool::logger().level() == spdlog::level::off);
  CHECK_FALSE(procpool::logger().should_log(spdlog::level::critical));
}

TEST_CASE("Log.Pattern.ProcessAndThreadNames") {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  spdlog::logger& lg = procpool::logger();
  lg.sinks().push_back(sink);
  procpool::set_log_pattern("%N|%-12k|%v");
  procpool::set_log_level(spdlog::level::debug);
  lg.debug("hello {}", 42);
  lg.sinks().pop_back();
  CHECK(out.str() == "MainProcess|MainThread  |hello 42\n");
}

