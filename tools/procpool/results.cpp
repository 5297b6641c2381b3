#include "results.hpp"

#include "options.hpp"

#include "os/fd.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace procpool::cli {
namespace {

using Fd = os::UniqueFd;  // closes on scope exit unless released: every error path leaves nothing open

[[noreturn]] void fail(const std::string& path, const std::string& what, int error) {
  throw ResultsError(fmt::format("--results: {} '{}': {}", what, path, std::strerror(error)));
}

/// Why `name` under `dir_fd` could not be opened without following links, for the message.
[[noreturn]] void fail_open(int dir_fd, const char* name, const std::string& path, int error) {
  struct stat st {};
  if ((error == ELOOP || error == ENOTDIR) && ::fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISLNK(st.st_mode))
    throw ResultsError(fmt::format("--results: '{}' is a symbolic link: refusing to write through it", path));
  fail(path, "cannot open", error);
}

/// Opens DIR/SEQ/name for writing: created if missing, an existing regular file with no other
/// link emptied. Checks are made on the open descriptor, so nothing can be swapped in between.
Fd open_result_file(int seq_fd, const char* name, const std::string& path) {
  // O_NONBLOCK: a FIFO planted there must not hang procpool; cleared below for the regular file.
  Fd fd(::openat(seq_fd, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC, 0644));
  if (fd.get() < 0) fail_open(seq_fd, name, path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail(path, "cannot stat", errno);
  if (!S_ISREG(st.st_mode)) throw ResultsError(fmt::format("--results: '{}' is not a regular file", path));
  // A hard link to someone else's file would have us truncate that file.
  if (st.st_nlink > 1)
    throw ResultsError(fmt::format("--results: '{}' has {} hard links: refusing to overwrite it", path, st.st_nlink));
  if (::fcntl(fd.get(), F_SETFL, 0) != 0) fail(path, "cannot set flags of", errno);
  if (::ftruncate(fd.get(), 0) != 0) fail(path, "cannot truncate", errno);
  return fd;
}

void write_all(int fd, const std::string& data, const std::string& path) {
  if (const int err = os::write_all(fd, data); err != 0) fail(path, "cannot write", err);
}

/// The user's own results directory, created if needed (with its parents) and resolved normally (it may
/// be a symlink to a bigger disk). Throws UsageError.
int open_results_root(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw UsageError(fmt::format("--results: cannot create '{}': {}", dir, ec.message()));
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw UsageError(fmt::format("--results: cannot open '{}': {}", dir, std::strerror(errno)));
  return fd;
}

/// Opens (making them as needed) the directories `components` beneath `root_fd`, one at a time with
/// O_NOFOLLOW; `shown` is how the root is named in messages (empty or ending in /).
Fd open_dirs_beneath(int root_fd, const std::vector<std::string>& components, std::string shown) {
  Fd current(::fcntl(root_fd, F_DUPFD_CLOEXEC, 0));
  if (current.get() < 0) fail(shown.empty() ? "." : shown, "cannot open", errno);
  for (std::size_t i = 0; i < components.size(); ++i) {
    const char* name = components[i].c_str();
    shown += (i == 0 ? "" : "/") + components[i];
    if (::mkdirat(current.get(), name, 0755) != 0 && errno != EEXIST) fail(shown, "cannot create directory", errno);
    Fd next(::openat(current.get(), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (next.get() < 0) fail_open(current.get(), name, shown, errno);
    current = std::move(next);
  }
  return current;
}

bool ends_with_nocase(const std::string& text, std::string_view suffix) {
  if (text.size() < suffix.size()) return false;
  return std::equal(suffix.begin(), suffix.end(), text.end() - static_cast<std::ptrdiff_t>(suffix.size()),
                    [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); });
}

/// Perl's numeric value of a string: its leading number, else 0 (GNU sorts header names with <=>).
double perl_number(const std::string& text) {
  const char* start = text.c_str();
  while (*start == ' ' || *start == '\t' || *start == '\n') ++start;
  if (*start == '0' && (start[1] == 'x' || start[1] == 'X')) return 0;  // Perl reads no hex here
  char* end = nullptr;
  const double value = std::strtod(start, &end);
  return end == start ? 0 : value;
}

/// Perl's magic string increment ("V9"++ is "W0"), which names GNU parallel's CSV value columns.
void perl_increment(std::string& text) {
  for (std::size_t i = text.size(); i-- > 0;) {
    char& c = text[i];
    if (c == '9') { c = '0'; continue; }
    if (c == 'z') { c = 'a'; continue; }
    if (c == 'Z') { c = 'A'; continue; }
    ++c;
    return;
  }
  const char first = text.front();  // every character wrapped: one more in front
  text.insert(text.begin(), first == '0' ? '1' : first);
}

std::string escape_dir_value(const std::string& value) {
  std::string out;
  for (const char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '\t') out += "\\t";
    else if (c == '\0') out += "\\0";
    else if (c == '/') out += "\\_";
    else out += c;
  }
  if (out.size() > NAME_MAX) out.resize(NAME_MAX);  // GNU parallel cuts values to what mkdir takes
  return out;
}

} // namespace

ResultsDir::ResultsDir(const std::string& path) : path_(path), fd_(open_results_root(path)) {}

ResultsDir::~ResultsDir() {
  if (fd_ >= 0) ::close(fd_);
}

std::string ResultsDir::file_path(std::uint64_t seq, const char* name) const {
  return fmt::format("{}/{}/{}", path_, seq, name);
}

ResultsDir::JobFiles ResultsDir::create(std::uint64_t seq, const std::string& command) const {
  const std::string name = std::to_string(seq);
  const std::string dir = fmt::format("{}/{}", path_, name);
  if (::mkdirat(fd_, name.c_str(), 0755) != 0 && errno != EEXIST) fail(dir, "cannot create directory", errno);
  Fd seq_fd(::openat(fd_, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (seq_fd.get() < 0) fail_open(fd_, name.c_str(), dir, errno);

  const std::string cmd_path = dir + "/cmd";
  Fd cmd = open_result_file(seq_fd.get(), "cmd", cmd_path);
  write_all(cmd.get(), command + "\n", cmd_path);
  if (::close(cmd.release()) != 0) fail(cmd_path, "cannot write", errno);  // NFS reports ENOSPC late
  Fd out = open_result_file(seq_fd.get(), "stdout", dir + "/stdout");
  Fd err = open_result_file(seq_fd.get(), "stderr", dir + "/stderr");
  return {out.release(), err.release()};
}

std::string args_as_dirname(const std::vector<std::string>& args, const std::vector<std::size_t>& record_sizes,
                            const std::vector<std::string>& names) {
  std::vector<std::size_t> sizes = record_sizes;
  if (sizes.empty()) sizes.push_back(args.size());
  std::string out;
  std::size_t at = 0;
  for (const std::size_t size : sizes) {
    std::vector<std::string> column_names(size);
    for (std::size_t i = 0; i < size; ++i) column_names[i] = i < names.size() ? names[i] : std::to_string(i + 1);
    std::vector<std::size_t> order(size);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      const double na = perl_number(column_names[a]), nb = perl_number(column_names[b]);
      if (na != nb) return na < nb;
      return column_names[a] < column_names[b];
    });
    for (const std::size_t i : order) {
      if (at + i >= args.size()) continue;
      if (!out.empty()) out += '/';
      out += column_names[i] + "/" + escape_dir_value(args[at + i]);
    }
    at += size;
  }
  return out;
}

std::optional<std::vector<std::string>> components_beneath(std::string_view path) {
  std::vector<std::string> components;
  std::size_t at = 0;
  while (at <= path.size()) {
    auto slash = path.find('/', at);
    if (slash == std::string_view::npos) slash = path.size();
    const std::string_view part = path.substr(at, slash - at);
    if (part == "..") {
      if (components.empty()) return std::nullopt;
      components.pop_back();
    } else if (!part.empty() && part != ".") {
      components.emplace_back(part);
    }
    at = slash + 1;
  }
  return components;
}

std::string csv_field(std::string_view value, char separator) {
  bool quote = false;
  std::string out;
  for (const char c : value) {
    if (c == '"') { out += '"'; quote = true; }
    // Perl's \s: space, \t, \n, \v, \f, \r.
    if (c == separator || c == '\0' || c == ' ' || (c >= '\t' && c <= '\r')) quote = true;
    out += c;
  }
  return quote ? "\"" + out + "\"" : out;
}

std::string json_escape(std::string_view value) {
  std::string out;
  for (const char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (static_cast<unsigned char>(c) < 0x20) out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
    else out += c;
  }
  return out;
}

GnuResults::GnuResults(const std::string& name, const std::string& named, const std::string& all_args, bool plus)
    : name_(name) {
  if (ends_with_nocase(name, ".csv")) table_ = Table::Csv;
  else if (ends_with_nocase(name, ".tsv")) table_ = Table::Tsv;
  else if (ends_with_nocase(name, ".json")) table_ = Table::Json;
  if (table()) {
    if (name == "-.csv" || name == "-.tsv" || name == "-.json") {  // GNU parallel's: the table on stdout
      root_fd_ = STDOUT_FILENO;
      owns_fd_ = false;
      return;
    }
    root_fd_ = ::open(name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOCTTY | O_CLOEXEC, 0666);
    if (root_fd_ < 0) throw UsageError(fmt::format("--results: cannot open '{}': {}", name, std::strerror(errno)));
    return;
  }
  // GNU parallel: a name that its replacement strings change is a template.
  CommandTemplate name_template(named, all_args, plus, false);
  if (name_template.expand({"\x01"}, 1, 1, false) != named) {
    template_ = std::move(name_template);
    // Every expansion starts with the text before the first replacement string: its directory is
    // the root that no argument may climb out of.
    const auto first = std::min(name.find('{'), name.find(all_args));
    const auto slash = first == 0 ? std::string::npos : name.rfind('/', first - 1);
    root_ = slash == std::string::npos ? "" : name.substr(0, slash + 1);
  } else {
    root_ = name;
  }
  root_fd_ = open_results_root(root_.empty() ? "." : root_);
}

GnuResults::~GnuResults() {
  if (owns_fd_ && root_fd_ >= 0) ::close(root_fd_);
}

GnuResults::Target GnuResults::target(const JobInput& job, const std::vector<std::string>& names, unsigned slot) const {
  Target t;
  std::string relative;
  if (template_) {
    t.expanded = template_->expand(job.args, job.seq, slot, false);
    relative = t.expanded.substr(std::min(root_.size(), t.expanded.size()));
    if (root_.empty() && !relative.empty() && relative.front() == '/')
      throw ResultsError(fmt::format("--results: '{}' is an absolute path: the arguments may not lead outside "
                                     "the current directory", t.expanded));
    t.directory = !t.expanded.empty() && t.expanded.back() == '/';
    t.shown_root = root_;
  } else {
    relative = args_as_dirname(job.args, job.record_sizes, names);
    t.expanded = name_ + "/" + relative + "/";  // GNU parallel's name of the directory
    t.shown_root = name_ + "/";
  }
  auto components = components_beneath(relative);
  if (!components)
    throw ResultsError(fmt::format("--results: '{}' leads outside '{}': refusing to write there", t.expanded,
                                   root_.empty() ? "." : root_));
  t.components = std::move(*components);
  if (!t.directory) {
    if (t.components.empty()) throw ResultsError(fmt::format("--results: '{}' names no file", t.expanded));
    t.base = t.components.back();
    t.components.pop_back();
  }
  return t;
}

bool GnuResults::already_done(const JobInput& job, const std::vector<std::string>& names) const {
  if (table()) return false;
  Target t;
  try {
    t = target(job, names, 1);
  } catch (const ResultsError&) {
    return false;  // it will be refused when it starts
  }
  std::string path;
  for (const auto& component : t.components) path += component + "/";
  path += t.directory ? "stdout" : t.base;
  struct stat st {};
  return ::fstatat(root_fd_, path.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
}

GnuResults::JobFiles GnuResults::create(const JobInput& job, const std::vector<std::string>& names,
                                        unsigned slot) const {
  const Target t = target(job, names, slot);
  const bool directory = t.directory;
  const std::string& base = t.base;
  const std::string& expanded = t.expanded;
  const Fd dir = open_dirs_beneath(root_fd_, t.components, t.shown_root);
  const std::string seq_name = directory ? "seq" : base + ".seq";
  const std::string out_name = directory ? "stdout" : base;
  const std::string err_name = directory ? "stderr" : base + ".err";
  const std::string shown = directory ? expanded : expanded.substr(0, expanded.size() - base.size());
  {
    Fd seq = open_result_file(dir.get(), seq_name.c_str(), shown + seq_name);
    write_all(seq.get(), std::to_string(job.seq), shown + seq_name);  // no newline, as GNU parallel
    if (::close(seq.release()) != 0) fail(shown + seq_name, "cannot write", errno);
  }
  Fd out = open_result_file(dir.get(), out_name.c_str(), shown + out_name);
  Fd err = open_result_file(dir.get(), err_name.c_str(), shown + err_name);
  return {out.release(), err.release(), shown + out_name, shown + err_name};
}

void GnuResults::write_row(const JobLogEntry& entry, const std::vector<std::string>& values,
                           const std::vector<std::string>& names, std::string_view out, std::string_view err) {
  const std::string host = entry.host.empty() ? ":" : entry.host;
  std::string text;
  if (table_ == Table::Json) {
    std::string quoted_values;
    for (const auto& value : values) quoted_values += (quoted_values.empty() ? "\"" : ",\"") + json_escape(value) + "\"";
    text = fmt::format(
        "{{ \"Seq\": {}, \"Host\": \"{}\", \"Starttime\": {:.3f}, \"JobRuntime\": {:.3f}, \"Send\": {}, "
        "\"Receive\": {}, \"Exitval\": {}, \"Signal\": {}, \"Command\": \"{}\", \"V\": [ {} ], "
        "\"Stdout\": \"{}\", \"Stderr\": \"{}\" }}\n",
        entry.seq, json_escape(host), entry.start_epoch, entry.runtime, entry.send, entry.receive, entry.exitval,
        entry.signal, json_escape(entry.command), quoted_values, json_escape(out), json_escape(err));
  } else {
    const char sep = table_ == Table::Csv ? ',' : '\t';
    auto row = [&](const std::vector<std::string>& fields) {
      for (std::size_t i = 0; i < fields.size(); ++i) text += (i == 0 ? "" : std::string(1, sep)) + csv_field(fields[i], sep);
      text += '\n';
    };
    if (!header_written_) {
      // The value columns: --header's names, else V1, V2... (Perl's "V9"++ is "W0").
      std::vector<std::string> header = {"Seq", "Host", "Starttime", "JobRuntime", "Send", "Receive",
                                         "Exitval", "Signal", "Command"};
      std::string v = "V1";
      for (std::size_t i = 0; i < values.size(); ++i) {
        header.push_back(names.empty() ? v : (i < names.size() ? names[i] : ""));
        perl_increment(v);
      }
      header.emplace_back("Stdout");
      header.emplace_back("Stderr");
      row(header);
      header_written_ = true;
    }
    std::vector<std::string> fields = {std::to_string(entry.seq), host, fmt::format("{:.3f}", entry.start_epoch),
                                       fmt::format("{:.3f}", entry.runtime), std::to_string(entry.send),
                                       std::to_string(entry.receive), std::to_string(entry.exitval),
                                       std::to_string(entry.signal), entry.command};
    fields.insert(fields.end(), values.begin(), values.end());
    fields.emplace_back(out);
    fields.emplace_back(err);
    row(fields);
  }
  if (const int error = os::write_all(root_fd_, text); error != 0)
    fail(name_ == "-.csv" || name_ == "-.tsv" || name_ == "-.json" ? "stdout" : name_, "cannot write", error);
}

} // namespace procpool::cli
