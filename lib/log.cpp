#include "procpool/log.hpp"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>
#include <string_view>

#include <spdlog/details/os.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <unistd.h>

#include "load_time.hpp"
#include "procpool/detail/os/ids.hpp"

namespace procpool {
namespace {

constexpr const char* kDefaultPattern = "%Y-%m-%d %H:%M:%S.%e %-7l [%N pid=%P] (%-10k) %v";

// Appends `text` honouring the flag's padding (%-10k pads right, %10k pads left).
void append_padded(std::string_view text, const spdlog::details::padding_info& pad, spdlog::memory_buf_t& dest) {
  const size_t width = pad.width_;
  const size_t fill = width > text.size() ? width - text.size() : 0;
  const bool left = pad.side_ == spdlog::details::padding_info::pad_side::left;
  if (left) for (size_t i = 0; i < fill; ++i) dest.push_back(' ');
  std::string_view shown = (pad.truncate_ && width < text.size()) ? text.substr(0, width) : text;
  dest.append(shown.data(), shown.data() + shown.size());
  if (!left) for (size_t i = 0; i < fill; ++i) dest.push_back(' ');
}

class ProcessNameFlag final : public spdlog::custom_flag_formatter {
public:
  void format(const spdlog::details::log_msg&, const std::tm&, spdlog::memory_buf_t& dest) override {
    append_padded(detail::process_name_slot(), padinfo_, dest);
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<ProcessNameFlag>();
  }
};

class ThreadNameFlag final : public spdlog::custom_flag_formatter {
public:
  void format(const spdlog::details::log_msg&, const std::tm&, spdlog::memory_buf_t& dest) override {
    append_padded(detail::current_thread_display_name(), padinfo_, dest);
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<ThreadNameFlag>();
  }
};

std::unique_ptr<spdlog::formatter> make_formatter(const std::string& pattern) {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<ProcessNameFlag>('N').add_flag<ThreadNameFlag>('k').set_pattern(pattern);
  return formatter;
}

spdlog::level::level_enum level_from_env() {
  const char* env = std::getenv("PROCPOOL_LOG");
  if (env == nullptr || *env == '\0') return spdlog::level::off;
  return spdlog::level::from_str(env);  // unknown names give "off"
}

struct LoggerState {
  std::shared_ptr<spdlog::logger> logger;
  std::string pattern = kDefaultPattern;
};

// Never destroyed: threads may still log while static destructors run. Built at load (below),
// not a guarded function-local static: state() runs inside call_once and in a forked child
// (rebuild_logger_after_fork), where a guard copied "in progress" would never be released.
constinit detail::LoadTimeObject<LoggerState> g_state;
LoggerState& state() { return g_state.get(); }

std::shared_ptr<spdlog::logger> make_logger(spdlog::level::level_enum level) {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto lg = std::make_shared<spdlog::logger>("procpool", std::move(sink));
  lg->set_formatter(make_formatter(state().pattern));
  lg->set_level(level);
  lg->flush_on(spdlog::level::trace);
  return lg;
}

// std::call_once is pthread_once in libstdc++; glibc's pthread_once is fork-safe (a child
// forked while another thread ran the initialiser runs it again: "fork generation"), and
// what it runs, state() and make_logger(), takes no guard of procpool's.
std::once_flag logger_once;

} // namespace

spdlog::logger& logger() {
  std::call_once(logger_once, [] { state().logger = make_logger(level_from_env()); });
  return *state().logger;
}

void set_log_level(spdlog::level::level_enum level) { logger().set_level(level); }

void set_log_pattern(std::string_view pattern) {
  state().pattern = std::string(pattern);
  logger().set_formatter(make_formatter(state().pattern));
}

namespace detail {

namespace {
struct ProcessName {
  std::string value = "MainProcess";
};
// Never destroyed (log lines may be formatted while static destructors run), built at load
// rather than in a guarded function-local static (see load_time.hpp).
constinit LoadTimeObject<ProcessName> g_process_name;
} // namespace

std::string& process_name_slot() { return g_process_name.get().value; }

std::string& thread_name_slot() {
  // thread_local: its guard is per thread, and a forked child's thread is a copy of the
  // forking thread, which cannot be in the middle of its own first call here.
  thread_local std::string name;
  return name;
}

std::string current_thread_display_name() {
  const std::string& slot = thread_name_slot();
  if (!slot.empty()) return slot;
  if (os::is_main_thread()) return "MainThread";
  return "Dummy-" + std::to_string(os::current_tid());
}

// Built while the library loads, before any thread can fork.
// Also runs spdlog's own guarded first-use static of the colour sink (is_color_terminal(),
// reached from make_logger(), which a forked child calls): a fork while another thread made
// the first log call would otherwise copy that guard "in progress" into the child.
[[gnu::constructor]] void build_log_state_at_load() noexcept {
  (void)g_state.get();
  (void)g_process_name.get();
  (void)spdlog::details::os::is_color_terminal();
}

void rebuild_logger_after_fork() {
  if (!state().logger) return;  // never used: nothing to rebuild
  // The parent's sink mutex may have been held by another thread at fork time: abandon the
  // old logger without destroying it and build a fresh one.
  const auto level = state().logger->level();  // set_log_level() is inherited, as in Python
  new std::shared_ptr<spdlog::logger>(std::move(state().logger));  // NOLINT: deliberate leak
  state().logger = make_logger(level);
}

} // namespace detail
} // namespace procpool
