#include "limit.hpp"

#include "options.hpp"
#include "spawn.hpp"

#include "os/fd.hpp"
#include "os/proc.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <vector>

namespace procpool::cli {

LimitVerdict limit_verdict(int exit_status) {
  if (exit_status == 0) return LimitVerdict::Start;
  return exit_status == 2 ? LimitVerdict::KillYoungest : LimitVerdict::Wait;
}

JobLimit::JobLimit(const std::string& spec) : command_(spec) {
  std::istringstream words(spec);
  std::string name, value, extra;
  words >> name >> value >> extra;
  if (value.empty() || !extra.empty()) return;  // GNU parallel: only `NAME VALUE` is predefined
  if (name == "mem") {
    kind_ = Kind::Mem;
    value_ = static_cast<double>(parse_size(value, "--limit mem"));
  } else if (name == "load" || name == "io") {
    kind_ = name == "load" ? Kind::Load : Kind::Io;
    char* end = nullptr;
    value_ = std::strtod(value.c_str(), &end);
    if (end != value.c_str() + value.size() || !(value_ >= 0))
      throw UsageError(fmt::format("--limit {}: '{}' is not a number", name, value));
  }
}

std::optional<std::uint64_t> JobLimit::cached_and_free(const std::string& meminfo) {
  // GNU parallel's awk: /^((Swap)?Cached|MemFree|Buffers):/, in kB.
  std::istringstream lines(meminfo);
  std::string line;
  std::uint64_t kib = 0;
  bool found = false;
  while (std::getline(lines, line)) {
    for (const char* field : {"Cached:", "SwapCached:", "MemFree:", "Buffers:"}) {
      if (line.rfind(field, 0) != 0) continue;
      kib += std::strtoull(line.c_str() + std::string_view(field).size(), nullptr, 10);
      found = true;
    }
  }
  if (!found) return std::nullopt;
  return kib * 1024;
}

std::map<std::string, std::uint64_t> JobLimit::io_ticks(const std::string& diskstats) {
  std::map<std::string, std::uint64_t> ticks;
  std::istringstream lines(diskstats);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::vector<std::string> f;
    for (std::string word; fields >> word;) f.push_back(word);
    if (f.size() >= 13) ticks[f[2]] = std::strtoull(f[12].c_str(), nullptr, 10);
  }
  return ticks;
}

LimitVerdict JobLimit::check() {
  switch (kind_) {
    case Kind::Command:
      return limit_verdict(run_shell_command(command_, {"SSHLOGIN=:"}, true));
    case Kind::Mem: {
      const auto text = os::read_file("/proc/meminfo");
      const auto bytes = text ? cached_and_free(*text) : std::nullopt;
      if (!bytes) return LimitVerdict::Start;
      const auto free = static_cast<double>(*bytes);
      if (free < value_ / 2) return LimitVerdict::KillYoungest;
      return free < value_ ? LimitVerdict::Wait : LimitVerdict::Start;
    }
    case Kind::Load: {
      const double others = os::runnable_tasks().value_or(1) - 1;  // procpool itself is running
      return others > value_ ? LimitVerdict::Wait : LimitVerdict::Start;
    }
    case Kind::Io: {
      // GNU parallel reads `iostat -x 1 2`'s utilisation, measured in the background: nothing is
      // known before the first second, when it waits too.
      const auto now = std::chrono::steady_clock::now();
      if (last_sample_ == std::chrono::steady_clock::time_point{} || now - last_sample_ >= std::chrono::seconds(1)) {
        const auto text = os::read_file("/proc/diskstats");
        auto ticks = io_ticks(text.value_or(""));
        if (last_sample_ != std::chrono::steady_clock::time_point{}) {
          const double elapsed_ms = std::chrono::duration<double, std::milli>(now - last_sample_).count();
          double busiest = 0;
          for (const auto& [disk, t] : ticks)
            if (const auto before = last_ticks_.find(disk); before != last_ticks_.end() && t >= before->second)
              busiest = std::max(busiest, static_cast<double>(t - before->second) / elapsed_ms * 100);
          busiest_ = std::min(busiest, 100.0);
        }
        last_ticks_ = std::move(ticks);
        last_sample_ = now;
      }
      if (!busiest_) return LimitVerdict::Wait;
      return *busiest_ > value_ ? LimitVerdict::Wait : LimitVerdict::Start;
    }
  }
  return LimitVerdict::Start;
}

} // namespace procpool::cli
