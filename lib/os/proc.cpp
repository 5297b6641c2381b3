#include "os/proc.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "os/fd.hpp"

namespace procpool::os {
namespace {

/// "Key:   123 kB" in /proc/meminfo's text, in bytes.
std::optional<std::uint64_t> meminfo_field(const std::string& text, std::string_view key) {
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t end = text.find('\n', at);
    const std::string_view line(text.data() + at, (end == std::string::npos ? text.size() : end) - at);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ':')
      return std::strtoull(line.data() + key.size() + 1, nullptr, 10) * 1024;
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return std::nullopt;
}

/// Candidate directories of this process's cgroup for `controller`: see cgroup_room.
std::vector<std::string> cgroup_dirs(const std::string& controller) {
  std::vector<std::string> dirs;
  const auto text = read_file("/proc/self/cgroup");
  if (!text) return dirs;
  for (std::size_t at = 0; at < text->size();) {
    std::size_t end = text->find('\n', at);
    if (end == std::string::npos) end = text->size();
    const std::string line = text->substr(at, end - at);
    at = end + 1;
    const auto a = line.find(':');
    const auto b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1);
    const std::string path = line.substr(b + 1);
    if (controllers.empty()) {
      dirs.push_back("/sys/fs/cgroup" + path);
      dirs.emplace_back("/sys/fs/cgroup");
    } else if (("," + controllers + ",").find("," + controller + ",") != std::string::npos) {
      dirs.push_back("/sys/fs/cgroup/" + controller + path);
      dirs.push_back("/sys/fs/cgroup/" + controller);
    }
  }
  return dirs;
}

} // namespace

std::optional<std::uint64_t> read_number_file(const std::string& path) {
  const auto text = read_file(path);
  if (!text) return std::nullopt;
  const std::size_t begin = text->find_first_not_of(" \t\n");
  if (begin == std::string::npos) return std::nullopt;
  const std::size_t end = text->find_first_of(" \t\n", begin);
  const std::string word = text->substr(begin, end == std::string::npos ? std::string::npos : end - begin);
  if (word.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  errno = 0;
  const unsigned long long value = std::strtoull(word.c_str(), nullptr, 10);
  if (errno == ERANGE) return std::nullopt;  // no usable limit
  return value;
}

MemInfo read_meminfo() {
  MemInfo info;
  const auto text = read_file("/proc/meminfo");
  if (!text) return info;
  info.total = meminfo_field(*text, "MemTotal");
  info.available = meminfo_field(*text, "MemAvailable");
  info.swap_free = meminfo_field(*text, "SwapFree");
  return info;
}

std::optional<std::uint64_t> cgroup_room(const std::string& controller, const char* limit_file, const char* usage_file) {
  for (const std::string& dir : cgroup_dirs(controller)) {
    const auto limit = read_number_file(dir + "/" + limit_file);  // "max" (v2): no limit
    const auto usage = read_number_file(dir + "/" + usage_file);
    if (limit && usage) return *limit > *usage ? *limit - *usage : 0;
    if (usage) return std::nullopt;
  }
  return std::nullopt;
}

std::optional<std::uint64_t> available_memory() {
  const MemInfo info = read_meminfo();
  if (!info.available) return std::nullopt;
  std::uint64_t total = *info.available + info.swap_free.value_or(0);
  if (const auto room = cgroup_room("memory", "memory.max", "memory.current"); room && *room < total) total = *room;
  return total;
}

KernelLimits read_kernel_limits() {
  return {read_number_file("/proc/sys/kernel/threads-max"), read_number_file("/proc/sys/kernel/pid_max"),
          read_number_file("/proc/sys/vm/max_map_count")};
}

std::optional<double> runnable_tasks() {
  const auto text = read_file("/proc/loadavg");
  if (!text) return std::nullopt;
  // "0.00 0.01 0.05 2/123 4567": the 4th field.
  std::size_t at = 0;
  for (int field = 0; field < 3; ++field) {
    at = text->find(' ', at);
    if (at == std::string::npos) return std::nullopt;
    ++at;
  }
  return std::strtod(text->c_str() + at, nullptr);
}

} // namespace procpool::os
