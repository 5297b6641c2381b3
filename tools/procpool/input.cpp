#include "input.hpp"
#include "pipe_input.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <regex>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

namespace procpool::cli {
namespace {

constexpr std::size_t kInitialBufferSize = 64 * 1024;

bool is_blank_or_comment(const std::string& line) {
  const auto first = line.find_first_not_of(" \t");
  return first == std::string::npos || line[first] == '#';
}

} // namespace

LineReader::LineReader(const std::string& path, bool strip_cr, std::string delimiter)
    : path_(path), strip_cr_(strip_cr && delimiter == "\n"), delimiter_(std::move(delimiter)) {
  if (path == "-") {
    fd_ = STDIN_FILENO;
  } else {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw UsageError(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
    owns_fd_ = true;
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0) throw UsageError(fmt::format("cannot read '{}': {}", path, std::strerror(errno)));
  if (S_ISDIR(st.st_mode)) {
    if (owns_fd_) ::close(fd_);
    throw UsageError(fmt::format("cannot read '{}': it is a directory", path));
  }
  may_block_ = !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode);
  buffer_.resize(kInitialBufferSize);
}

LineReader::~LineReader() {
  if (owns_fd_) ::close(fd_);
}

bool LineReader::fill() {
  if (begin_ > 0) {  // move the partial line to the front before reading more
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == buffer_.size()) buffer_.resize(buffer_.size() * 2);  // a line longer than the buffer
  if (may_block_) {
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, 0) == 0) return false;
  }
  for (;;) {
    const ssize_t n = ::read(fd_, buffer_.data() + end_, buffer_.size() - end_);
    if (n > 0) { end_ += static_cast<std::size_t>(n); return true; }
    if (n == 0) { eof_ = true; return true; }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return false;
    throw UsageError(fmt::format("cannot read '{}': {}", path_, std::strerror(errno)));
  }
}

LineReader::Result LineReader::next(std::string& line) {
  for (;;) {
    const char* start = buffer_.data() + begin_;
    const void* nl = delimiter_.size() == 1 ? std::memchr(start, delimiter_[0], end_ - begin_)
                                            : ::memmem(start, end_ - begin_, delimiter_.data(), delimiter_.size());
    if (nl != nullptr) {
      std::size_t length = static_cast<std::size_t>(static_cast<const char*>(nl) - start);
      begin_ += length + delimiter_.size();
      if (strip_cr_ && length > 0 && start[length - 1] == '\r') --length;
      line.assign(start, length);
      return Result::Line;
    }
    if (eof_) {
      if (begin_ == end_) return Result::End;
      std::size_t length = end_ - begin_;
      if (strip_cr_ && start[length - 1] == '\r') --length;
      line.assign(start, length);
      begin_ = end_;
      return Result::Line;
    }
    if (!fill()) return Result::WouldBlock;
  }
}

bool is_whitespace_only(const std::string& value) {
  return std::all_of(value.begin(), value.end(), [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  });
}

bool ContinuedLines::take(std::string& line) {
  line.insert(0, std::exchange(held_, {}));
  if (skip_empty_ && is_whitespace_only(line)) return false;
  if (join_ && !line.empty() && is_whitespace_only(line.substr(line.size() - 1))) {
    held_ = std::move(line);
    return false;
  }
  return true;
}

namespace {

void wait_readable(int fd) {
  pollfd pfd{fd, POLLIN, 0};
  ::poll(&pfd, 1, -1);
}

} // namespace

LineReader::Result LineReader::next_waiting(std::string& line) {
  for (;;) {
    const auto r = next(line);
    if (r != Result::WouldBlock) return r;
    wait_readable(fd_);
  }
}

JobSource::Result JobSource::next_waiting(JobInput& job) {
  for (;;) {
    const auto r = next(job);
    if (r != Result::WouldBlock) return r;
    wait_readable(wait_fd());
  }
}

std::optional<std::uint64_t> count_lines(const std::string& path, bool skip_blank_and_comments,
                                         const std::string& delimiter, bool skip_empty) {
  if (path == "-") return std::nullopt;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  LineReader reader(path, true, delimiter);
  std::string line;
  std::uint64_t count = 0;
  while (reader.next(line) == LineReader::Result::Line)
    if ((!skip_blank_and_comments || !is_blank_or_comment(line)) && (!skip_empty || !is_whitespace_only(line)))
      ++count;
  return count;
}

// ---------------------------------------------------------------------------------------------
// Replacement strings

std::string shell_quote(const std::string& word) {
  const bool plain = !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("_./:,+@%^=-", c) != nullptr;
  });
  if (plain) return word;
  std::string quoted = "'";
  for (const char c : word) {
    if (c == '\'') quoted += "'\"'\"'";
    else quoted += c;
  }
  quoted += '\'';
  return quoted;
}

namespace {

// GNU parallel 20221122's --plus strings that procpool run does not have: the ssh hosts', and the
// positional {2choose_k} {2uniq} (whose meaning in GNU parallel is unclear).
bool is_unsupported_plus_string(std::string_view inner) {
  const auto name = inner.substr(std::min(inner.find_first_not_of("-0123456789 \t\n"), inner.size()));
  const bool positional = name.size() < inner.size();
  if (positional && (name == "choose_k" || name == "uniq")) return true;
  for (const std::string_view unsupported : {"host", "sshlogin", "hgrp", "agrp"})
    if (name == unsupported) return true;
  return false;
}

} // namespace

CommandTemplate::CommandTemplate(const std::string& text, const std::string& all_args, bool plus, bool append_args) {
  bool any_replacement = false;  // GNU parallel appends the arguments only to a template without any
  std::size_t pos = 0;
  auto add_literal = [&](std::string_view s) {
    if (s.empty()) return;
    if (segments_.empty() || segments_.back().kind != Kind::Literal) segments_.push_back({Kind::Literal, {}, 0, {}, false, false, nullptr});
    segments_.back().text.append(s);
  };
  const bool renamed = all_args != "{}";
  while (pos < text.size()) {
    if (renamed) {  // -I STR: STR is {}
      const auto token = text.find(all_args, pos);
      const auto brace = text.find('{', pos);
      if (token != std::string::npos && (brace == std::string::npos || token <= brace)) {
        add_literal(std::string_view(text).substr(pos, token - pos));
        segments_.push_back({Kind::Args, {}, 0, Modifier::None, false, false, nullptr});
        any_replacement = true;
        pos = token + all_args.size();
        continue;
      }
    }
    const auto open = text.find('{', pos);
    if (open == std::string::npos) { add_literal(std::string_view(text).substr(pos)); break; }
    add_literal(std::string_view(text).substr(pos, open - pos));
    if (plus) {  // the bash-like strings first: GNU parallel replaces its longer definitions first
      if (auto m = match_plus_edit(text, open)) {
        Segment seg;
        seg.kind = Kind::Args;
        seg.index = m->position;
        seg.edit = std::move(m->edit);
        any_replacement = true;
        segments_.push_back(std::move(seg));
        pos = open + m->length;
        continue;
      }
    }
    const auto close = text.find('}', open);
    if (close == std::string::npos) { add_literal(std::string_view(text).substr(open)); break; }
    std::string inner = text.substr(open + 1, close - open - 1);
    Segment seg;
    seg.kind = Kind::Args;
    // {-N}: the Nth argument from the end.
    const bool negative = inner.size() > 1 && inner[0] == '-' && std::isdigit(static_cast<unsigned char>(inner[1]));
    std::size_t digits = negative ? 1 : 0;
    while (digits < inner.size() && std::isdigit(static_cast<unsigned char>(inner[digits]))) ++digits;
    bool ok = true;
    if (renamed && inner.empty()) ok = false;  // {} is literal once -I named another string
    else if (inner == "#") seg.kind = Kind::Seq;
    else if (inner == "%" || (plus && inner == "slot")) seg.kind = Kind::Slot;
    else if (plus && inner == "##") seg.kind = Kind::TotalJobs;
    else if (plus && inner == "0#") seg.kind = Kind::PaddedSeq;
    else if (plus && inner == "0%") seg.kind = Kind::PaddedSlot;
    else if (plus && (inner == "choose_k" || inner == "uniq")) {  // the arguments, as {}; the job may be skipped
      (inner == "uniq" ? uniq_ : choose_k_) = true;
    }
    else {
      if (digits > 0) {
        const auto number = inner.substr(negative ? 1 : 0, std::min<std::size_t>(digits - (negative ? 1 : 0), 9));
        seg.index = std::stol(number) * (negative ? -1 : 1);
        ok = seg.index != 0;
      }
      const std::string modifier = inner.substr(digits);
      if (modifier.empty()) seg.modifier = Modifier::None;
      else if (modifier == ".") seg.modifier = Modifier::NoExt;
      else if (modifier == "/") seg.modifier = Modifier::Basename;
      else if (modifier == "//") seg.modifier = Modifier::Dirname;
      else if (modifier == "/.") seg.modifier = Modifier::BasenameNoExt;
      else if (plus && modifier == "..") seg.modifier = Modifier::NoExt2;
      else if (plus && modifier == "...") seg.modifier = Modifier::NoExt3;
      else if (plus && modifier == "+/") seg.modifier = Modifier::DirPlus;
      else if (plus && modifier == "+.") seg.modifier = Modifier::Ext;
      else if (plus && modifier == "+..") seg.modifier = Modifier::Ext2;
      else if (plus && modifier == "+...") seg.modifier = Modifier::Ext3;
      else if (plus && modifier == "/..") seg.modifier = Modifier::BasenameNoExt2;
      else if (plus && modifier == "/...") seg.modifier = Modifier::BasenameNoExt3;
      else ok = false;
    }
    // GNU parallel's --plus strings procpool lacks are refused, never run as text.
    if (!ok && plus && is_unsupported_plus_string(inner))
      throw UsageError(fmt::format("--plus: the replacement string {{{}}} is not supported by procpool run; "
                                   "filter the arguments first (sort -u, awk) or use a shell expression",
                                   inner));
    if (!ok) {  // not a replacement string: keep the brace literally, as GNU parallel does
      add_literal("{");
      pos = open + 1;
      continue;
    }
    if (seg.kind == Kind::TotalJobs || seg.kind == Kind::PaddedSeq) needs_total_ = true;
    any_replacement = true;
    segments_.push_back(std::move(seg));
    pos = close + 1;
  }
  if (text.empty()) {
    // The arguments are the command itself: inserted unquoted.
    segments_.push_back({Kind::Args, {}, 0, Modifier::None, true, false, nullptr});
  } else if (!any_replacement) {
    if (append_args) {
      add_literal(" ");
      segments_.push_back({Kind::Args, {}, 0, Modifier::None, false, false, nullptr});
    }
  } else {
    // GNU parallel quotes nothing when a replacement string is (part of) the first word
    // (`parallel {} ::: 'echo a'` runs `echo a`); a first word ending at '=' is an assignment (V={}).
    std::string before;
    for (const auto& seg : segments_) {
      if (seg.kind != Kind::Literal) break;
      before += seg.text;
    }
    const auto first = before.find_first_not_of(" \t\n");
    const bool in_first_word =
        first == std::string::npos || before.find_first_of(" \t\n=", first) == std::string::npos;
    if (in_first_word)
      for (auto& seg : segments_) seg.unquoted = true;
  }
  for (const auto& seg : segments_) {  // split the literals' blanks off, for context replace
    if (seg.kind != Kind::Literal) { words_.push_back(seg); continue; }
    for (std::size_t at = 0; at < seg.text.size();) {
      const bool blank = seg.text[at] == ' ' || seg.text[at] == '\t';
      std::size_t end = at;
      while (end < seg.text.size() && (seg.text[end] == ' ' || seg.text[end] == '\t') == blank) ++end;
      words_.push_back({Kind::Literal, seg.text.substr(at, end - at), 0, Modifier::None, false, blank, nullptr});
      at = end;
    }
  }
}

bool CommandTemplate::skips(const std::vector<std::string>& args) const {
  if (choose_k_)  // for $t (2..$#arg) { skip() if $arg[$t-1] ge $arg[$t] }
    for (std::size_t i = 1; i < args.size(); ++i)
      if (args[i - 1] >= args[i]) return true;
  if (uniq_) {  // ::uniq(@arg) != @arg, @arg having an empty $arg[0]
    std::vector<std::string_view> sorted(args.begin(), args.end());
    sorted.emplace_back();
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) return true;
  }
  return false;
}

void refuse_perl_expression(const std::string& text, const char* where) {
  const auto open = text.find("{=");
  if (open == std::string::npos || text.find("=}", open + 2) == std::string::npos) return;
  throw UsageError(fmt::format(
      "{}: '{}': {{= perl expression =}} is not supported (procpool has no Perl); use "
      "{{.}} {{/}} {{//}} {{/.}} or a shell expression such as $(echo {{}} | sed ...)",
      where, text));
}

std::string join_words(const std::vector<std::string>& words) {
  std::string text;
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (i > 0) text += ' ';
    text += words[i];
  }
  return text;
}

std::string gnu_dirname(const std::string& path) {
  std::string dir = path;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const auto slash = dir.rfind('/');
  if (slash == std::string::npos) return ".";
  dir.erase(slash + 1);
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

namespace {

// GNU parallel's definitions, as Perl substitutions: {.} is s:\.[^/.]*$::, {/} is s:.*/::,
// {/.} both, {//} File::Basename's dirname.
std::string strip_extension(const std::string& s) {
  const auto dot = s.rfind('.');
  if (dot == std::string::npos || s.find('/', dot) != std::string::npos) return s;
  return s.substr(0, dot);
}

std::string basename_of(const std::string& s) {
  const auto slash = s.rfind('/');
  return slash == std::string::npos ? s : s.substr(slash + 1);
}

// --plus: s:\.[^/.]*\.[^/.]*$:: ({..}) and the like: `n` extensions off, if there are that many.
std::string strip_extensions(const std::string& s, int n) {
  std::size_t cut = s.size();
  for (int i = 0; i < n; ++i) {
    const auto dot = s.rfind('.', cut == 0 ? 0 : cut - 1);
    if (cut == 0 || dot == std::string::npos || s.find('/', dot) < cut) return s;
    cut = dot;
  }
  return s.substr(0, cut);
}

// --plus: what {..} and the like take off ({+.} {+..} {+...}): s:.*\.:: for one, else the last `n`
// extensions; empty when there are fewer.
std::string extensions(const std::string& s, int n) {
  if (n == 1) {
    const auto dot = s.rfind('.');
    return dot == std::string::npos ? std::string() : s.substr(dot + 1);
  }
  const std::string stripped = strip_extensions(s, n);
  return stripped.size() == s.size() ? std::string() : s.substr(stripped.size() + 1);
}

// --plus's {0#} and {0%}: as wide as GNU parallel makes them, 1+int(log(n)/log(10)) digits (its
// floating point included: 1000 gives 3).
int gnu_digits(std::uint64_t n) {
  return 1 + static_cast<int>(std::log(static_cast<double>(std::max<std::uint64_t>(n, 1))) / std::log(10.0));
}

// {N}'s argument, none beyond the arguments. {-N} counts from the end as GNU parallel's Perl
// $arg[$n-N], whose negative index wraps once more: {-4} of a b c is c.
std::optional<std::size_t> position_of(long index, std::size_t count) {
  const auto n = static_cast<long>(count);
  long at = index > 0 ? index - 1 : n + index;
  if (at < 0) at += n;
  if (at < 0 || at >= n) return std::nullopt;
  return static_cast<std::size_t>(at);
}

std::string apply_modifier(const std::string& arg, int modifier) {
  // modifier values mirror CommandTemplate::Modifier: None, NoExt, Basename, Dirname, BasenameNoExt,
  // then --plus's NoExt2, NoExt3, DirPlus, Ext, Ext2, Ext3, BasenameNoExt2, BasenameNoExt3
  switch (modifier) {
    case 1: return strip_extension(arg);
    case 2: return basename_of(arg);
    case 3: return gnu_dirname(arg);
    case 4: return strip_extension(basename_of(arg));
    case 5: return strip_extensions(arg, 2);
    case 6: return strip_extensions(arg, 3);
    case 7: {  // s:/[^/]*$:: || s:.*$::
      const auto slash = arg.rfind('/');
      return slash == std::string::npos ? std::string() : arg.substr(0, slash);
    }
    case 8: return extensions(arg, 1);
    case 9: return extensions(arg, 2);
    case 10: return extensions(arg, 3);
    case 11: return strip_extensions(basename_of(arg), 2);
    case 12: return strip_extensions(basename_of(arg), 3);
    default: return arg;
  }
}

} // namespace

void CommandTemplate::expand_range(std::string& out, const std::vector<Segment>& segs, std::size_t begin,
                                   std::size_t end, const std::vector<std::string>& args, long one, std::uint64_t seq,
                                   unsigned slot, bool quote) const {
  for (std::size_t s = begin; s < end; ++s) {
    const auto& seg = segs[s];
    switch (seg.kind) {
      case Kind::Literal: out += seg.text; break;
      case Kind::Seq: out += std::to_string(seq); break;
      case Kind::Slot: out += std::to_string(slot); break;
      case Kind::TotalJobs: out += std::to_string(total_jobs_); break;
      case Kind::PaddedSeq: out += fmt::format("{:0{}}", seq, gnu_digits(total_jobs_)); break;
      case Kind::PaddedSlot: out += fmt::format("{:0{}}", slot, gnu_digits(std::max(1U, slots_))); break;
      case Kind::Args: {
        const bool raw = seg.unquoted;
        const auto value_of = [&](const std::string& arg) {
          return seg.edit ? seg.edit->apply(arg) : apply_modifier(arg, static_cast<int>(seg.modifier));
        };
        if (seg.index == 0) {
          const std::size_t first = one >= 0 ? static_cast<std::size_t>(one) : 0;
          const std::size_t last = one >= 0 ? first + 1 : args.size();
          for (std::size_t i = first; i < last && i < args.size(); ++i) {
            if (i > first) out += ' ';
            const std::string value = value_of(args[i]);
            out += (quote && !raw) ? shell_quote(value) : value;
          }
        } else if (const auto at = position_of(seg.index, args.size())) {
          const std::string value = value_of(args[*at]);
          out += (quote && !raw) ? shell_quote(value) : value;
        }
        break;  // {N} beyond the arguments expands to nothing, as in GNU parallel
      }
    }
  }
}

std::string CommandTemplate::expand(const std::vector<std::string>& args, std::uint64_t seq, unsigned slot,
                                    bool quote, bool context) const {
  std::string out;
  if (!context) {
    expand_range(out, segments_, 0, segments_.size(), args, -1, seq, slot, quote);
    return out;
  }
  // GNU parallel's context replace: each blank-separated word holding {} is repeated per argument.
  for (std::size_t begin = 0; begin < words_.size();) {
    if (words_[begin].blank) {
      out += words_[begin].text;
      ++begin;
      continue;
    }
    std::size_t end = begin;
    bool all_args = false;
    for (; end < words_.size() && !words_[end].blank; ++end)
      if (words_[end].kind == Kind::Args && words_[end].index == 0) all_args = true;
    if (!all_args || args.empty()) {
      expand_range(out, words_, begin, end, args, -1, seq, slot, quote);
    } else {
      for (std::size_t i = 0; i < args.size(); ++i) {
        if (i > 0) out += ' ';
        expand_range(out, words_, begin, end, args, static_cast<long>(i), seq, slot, quote);
      }
    }
    begin = end;
  }
  return out;
}

const std::vector<std::string>& JobSource::column_names() const {
  static const std::vector<std::string> kNone;
  return kNone;
}

std::string JobSource::tag_for(const JobInput& job) {
  std::string tag;
  for (std::size_t i = 0; i < job.args.size(); ++i) {
    if (i > 0) tag += ' ';
    tag += job.args[i];
  }
  return tag;
}

namespace {

class BatchSource final : public JobSource {
 public:
  BatchSource(const std::string& path, const std::string& delimiter)
      : reader_(path, true, delimiter), delimiter_(delimiter) {}

  Result next(JobInput& job) override {
    for (;;) {
      switch (reader_.next(line_)) {
        case LineReader::Result::WouldBlock: return Result::WouldBlock;
        case LineReader::Result::End: return Result::End;
        case LineReader::Result::Line:
          ++seq_;  // blank and comment lines are numbered too, as GNU parallel's jobs
          if (is_blank_or_comment(line_)) continue;
          job.seq = seq_;
          job.args.resize(1);
          job.args[0] = line_;
          return Result::Job;
      }
    }
  }
  [[nodiscard]] int wait_fd() const override { return reader_.fd(); }
  [[nodiscard]] std::optional<std::uint64_t> count_total() const override {
    return count_lines(reader_.path(), true, delimiter_);
  }
  [[nodiscard]] std::string command_for(const JobInput& job, unsigned) const override { return job.args[0]; }

 private:
  LineReader reader_;
  std::string delimiter_;
  std::string line_;
  std::uint64_t seq_ = 0;
};

// Perl's \s, which GNU parallel's --trim strips (both ends of every value by default with --colsep).
bool is_perl_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Splits one argument line into --colsep columns, as GNU parallel's `split /COLSEP/, $line, -1`:
// the separator is a Perl regex (ECMAScript's grammar is Perl's: \t, \s+, \d, [^,]... work), empty
// fields are kept, and with --colsep every value is trimmed of white space (GNU's --trim lr).
class ColumnSplitter {
 public:
  /// `trim`: --trim, by default both ends with a separator and none without (GNU parallel's).
  /// `csv`: colsep is one character and lines are CSV records (GNU parallel's --csv, Text::CSV).
  ColumnSplitter(const std::optional<std::string>& colsep, std::optional<Trim> trim, bool csv = false)
      : trim_(trim.value_or(colsep ? Trim::Both : Trim::None)) {
    if (!colsep) return;
    active_ = true;
    if (csv) {
      csv_separator_ = colsep->front();
      return;
    }
    const bool literal = colsep->find_first_of("\\^$.|?*+()[]{}") == std::string::npos;
    if (literal) literal_ = *colsep;
    else {
      try {
        regex_.emplace(*colsep, std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        throw UsageError(fmt::format("--colsep: '{}' is not a valid regex: {}", *colsep, e.what()));
      }
    }
    if (literal && literal_.empty()) throw UsageError("--colsep: empty separator");
  }
  [[nodiscard]] std::string trimmed(const std::string& value) const {
    if (trim_ == Trim::None) return value;
    std::size_t b = 0, e = value.size();
    if (trim_ != Trim::Right) while (b < e && is_perl_space(value[b])) ++b;
    if (trim_ != Trim::Left) while (e > b && is_perl_space(value[e - 1])) --e;
    return value.substr(b, e - b);
  }
  void split(const std::string& line, std::vector<std::string>& out) const {
    if (!active_) { out.push_back(trimmed(line)); return; }
    if (csv_separator_) { split_csv(line, out); return; }
    std::size_t pos = 0;
    if (!literal_.empty()) {
      for (;;) {
        const auto at = line.find(literal_, pos);
        if (at == std::string::npos) break;
        out.push_back(trimmed(line.substr(pos, at - pos)));
        pos = at + literal_.size();
      }
    } else {
      for (std::sregex_iterator it(line.begin(), line.end(), *regex_), end; it != end; ++it) {
        const auto at = static_cast<std::size_t>(it->position(0));
        const auto length = static_cast<std::size_t>(it->length(0));
        if (length == 0 && (at == 0 || at >= line.size())) continue;  // Perl: no field from these
        out.push_back(trimmed(line.substr(pos, at - pos)));
        pos = at + length;
      }
    }
    out.push_back(trimmed(line.substr(pos)));
  }

  /// --csv: Text::CSV's rules (binary, no loose quotes): a field that starts with " ends at a " before
  /// the separator or the end, "" in it is one "; a " anywhere else, or a CR or LF outside quotes, is an error. An empty record is one
  /// empty field (GNU parallel's).
  void split_csv(const std::string& line, std::vector<std::string>& out) const {
    const char sep = *csv_separator_;
    auto bad = [&] { return UsageError(fmt::format("CSV has unexpected format: ^{}^", line)); };
    std::size_t pos = 0;
    for (;;) {
      std::string field;
      if (pos < line.size() && line[pos] == '"') {
        for (++pos;; ++pos) {
          if (pos >= line.size()) throw bad();
          if (line[pos] != '"') { field += line[pos]; continue; }
          if (pos + 1 < line.size() && line[pos + 1] == '"') { field += '"'; ++pos; continue; }
          ++pos;  // the closing quote: the separator or the end must follow
          break;
        }
        if (pos < line.size() && line[pos] != sep) throw bad();
      } else {
        const auto end = line.find(sep, pos);
        field = line.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
        if (field.find_first_of("\"\r\n") != std::string::npos) throw bad();  // CR, LF only when quoted
        pos = end == std::string::npos ? line.size() : end;
      }
      out.push_back(trimmed(field));
      if (pos >= line.size()) return;
      ++pos;  // past the separator: a field follows, empty at the end
      if (pos == line.size()) { out.push_back(std::string()); return; }
    }
  }

 private:
  std::optional<char> csv_separator_;
  Trim trim_;
  bool active_ = false;
  std::string literal_;
  std::optional<std::regex> regex_;
};

// A NUL byte cannot be passed in an argument list: GNU parallel writes it as \0, with a warning.
void replace_nul_bytes(std::string& value) {
  if (value.find('\0') == std::string::npos) return;
  static bool warned = false;
  if (!warned) {
    std::fprintf(stderr, "procpool: warning: a NUL byte in the input was replaced with \\0 (for NUL-ended input, use -0)\n");
    warned = true;
  }
  std::string out;
  for (const char c : value) {
    if (c == '\0') out += "\\0";
    else out += c;
  }
  value = std::move(out);
}

// The values of a source as lines (below).
std::vector<std::string> read_source_lines(const ArgSource& source, const Options& options);

// --csv: a record whose quotes are not balanced goes on over the next line (a quoted field holding the
// delimiter), as GNU parallel reads it. ::: arguments are lines too (GNU parallel writes them to a file).
std::vector<std::string> join_csv_records(std::vector<std::string> lines, const std::string& delimiter) {
  std::vector<std::string> records;
  bool open = false;
  for (auto& line : lines) {
    const bool odd = std::count(line.begin(), line.end(), '"') % 2 == 1;
    if (open) records.back().append(delimiter).append(line);
    else records.push_back(std::move(line));
    open = open != odd;
  }
  return records;
}

std::vector<std::string> read_whole_source(const ArgSource& source, const Options& options) {
  std::vector<std::string> values = read_source_lines(source, options);
  return options.csv ? join_csv_records(std::move(values), options.delimiter) : values;
}
std::vector<std::string> read_source_lines(const ArgSource& source, const Options& options) {
  std::vector<std::string> values;
  if (source.kind == ArgSource::Kind::InlineArgs) {
    ContinuedLines lines(options.skip_empty, options.continued_lines);
    for (const auto& arg : source.args) {
      if (options.delimiter == "\n") {
        if (std::string value = arg; lines.take(value)) values.push_back(std::move(value));
        continue;
      }
      // GNU parallel writes ::: arguments to a file, each ended by the delimiter, and reads them back:
      // an argument holding the delimiter becomes several.
      std::size_t pos = 0;
      for (;;) {
        const auto at = arg.find(options.delimiter, pos);
        std::string value = arg.substr(pos, at == std::string::npos ? std::string::npos : at - pos);
        if (lines.take(value)) values.push_back(std::move(value));
        if (at == std::string::npos) break;
        pos = at + options.delimiter.size();
      }
    }
    if (lines.pending()) values.push_back(lines.flush());
    return values;
  }
  LineReader reader(source.path, false, options.delimiter);
  std::string line;
  ContinuedLines lines(options.skip_empty, options.continued_lines);
  while (reader.next_waiting(line) == LineReader::Result::Line) {  // read whole: wait for the rest
    replace_nul_bytes(line);
    if (lines.take(line)) values.push_back(line);
  }
  if (lines.pending()) values.push_back(lines.flush());
  return values;
}

// One dimension of the combinations: a source, or sources linked by :::+ / ::::+ / --link that
// advance together. Linked by :::+, the shortest ends the group (GNU parallel); with --link the
// longest does and the shorter ones wrap around.
struct SourceGroup {
  std::vector<std::vector<std::string>> members;
  bool wrap = false;

  [[nodiscard]] std::size_t size() const {
    std::size_t n = members.front().size();
    for (const auto& m : members) {
      if (m.empty()) return 0;
      n = wrap ? std::max(n, m.size()) : std::min(n, m.size());
    }
    return n;
  }
  void append(std::size_t index, const ColumnSplitter& splitter, std::vector<std::string>& out) const {
    for (const auto& m : members) splitter.split(m[index % m.size()], out);
  }
};

// Every combination of the source groups' values, the last group varying fastest. The first source
// is streamed (it may be endless) unless it is linked to others; the others are read whole at the start.
class TemplateSource final : public JobSource {
 public:
  explicit TemplateSource(const Options& options)
      // --pipe --tee: nothing appended, as with any --pipe
      : template_(join_words(options.template_words), options.replace_token, options.plus, options.pipe == PipeMode::None),
        splitter_(options.colsep, options.trim, options.csv),
        csv_(options.csv),
        delimiter_(options.delimiter),
        skip_empty_(options.skip_empty),
        multi_(options.max_args.has_value() || options.fill),
        fill_(options.fill),
        context_(options.context_replace),
        max_args_(options.max_args.value_or(std::numeric_limits<std::size_t>::max())),
        per_job_(options.max_args.value_or(std::numeric_limits<std::size_t>::max())),
        max_chars_(options.max_chars),
        exit_too_long_(options.exit_too_long),
        first_lines_(options.skip_empty, options.continued_lines && !options.csv),
        jobs_(std::max(1U, options.jobs)),
        header_lines_(options.tee ? 0 : options.header_lines) {  // --pipe --tee: the data's header
    std::vector<std::vector<const ArgSource*>> grouped;
    for (const auto& source : options.sources) {
      if (grouped.empty() || !(options.link || source.linked)) grouped.emplace_back();
      grouped.back().push_back(&source);
    }
    const auto& first = grouped.front();
    if (first.size() == 1 && first.front()->kind == ArgSource::Kind::File) {
      first_reader_ = std::make_unique<LineReader>(first.front()->path, false, options.delimiter);
      first_path_ = first.front()->path;
      std::vector<std::string> header;
      std::string line;
      // --header: wait for the header lines of a pipe.
      while (header.size() < header_lines_) {
        std::string record;
        if (next_first_record(record, true) != LineReader::Result::Line) break;
        header.push_back(record);
      }
      take_header(header);
    } else {
      first_group_ = make_group(first, options);
    }
    for (std::size_t i = 1; i < grouped.size(); ++i) others_.push_back(make_group(grouped[i], options));
    // GNU parallel: an empty source (`:::` alone, an empty file) among sources with values gives one
    // empty value (`::: a b :::` runs `a ''` and `b ''`); when every source is empty, no job runs.
    fill_empty_members(first_group_);
    for (auto& group : others_) fill_empty_members(group);
    first_size_ = first_reader_ ? 0 : first_group_.size();
    if (!first_reader_ && !memory_values_) any_empty_ = true;
    odometer_.assign(others_.size(), 0);
    if (!names_.empty())
      template_ = CommandTemplate(with_column_numbers(join_words(options.template_words)), options.replace_token,
                                  options.plus, options.pipe == PipeMode::None);
    template_.set_totals(0, jobs_);
    base_length_ = pending_length_ = template_.expand({}, 1, 1, true, context_).size();
  }

  // One record: a value of every source group (one combination), split into columns.
  Result next_record(std::vector<std::string>& record) {
    if (any_empty_) return Result::End;
    if (!have_first_ || odometer_done_) {
      first_columns_.clear();
      if (first_reader_) {
        std::string value;
        for (;;) {
          const auto r = next_first_record(value, false);
          if (r == LineReader::Result::WouldBlock) return Result::WouldBlock;
          if (r == LineReader::Result::End) {
            if (first_lines_.pending()) {  // -L: a last line ending in white space is a value as it is
              value = first_lines_.flush();
              break;
            }
            // An empty first source gives one empty value when another source has values.
            if (first_read_ || !memory_values_) return Result::End;
            value.clear();
            break;
          }
          if (first_lines_.take(value)) break;  // -r, -L's continued lines
        }
        first_read_ = true;
        replace_nul_bytes(value);
        splitter_.split(value, first_columns_);
      } else {
        if (first_pos_ == first_size_) return Result::End;
        first_group_.append(first_pos_++, splitter_, first_columns_);
      }
      have_first_ = true;
      odometer_done_ = false;
      std::fill(odometer_.begin(), odometer_.end(), 0);
    }
    record = first_columns_;
    for (std::size_t i = 0; i < others_.size(); ++i) others_[i].append(odometer_[i], splitter_, record);
    // Advance the odometer: the last group fastest.
    odometer_done_ = true;
    for (std::size_t i = others_.size(); i-- > 0;) {
      if (++odometer_[i] < others_[i].size()) { odometer_done_ = false; break; }
      odometer_[i] = 0;
    }
    return Result::Job;
  }

  Result next(JobInput& job) override {
    const auto r = next_job(job);
    job.skip = r == Result::Job && template_.may_skip() && template_.skips(job.args);
    return r;
  }

  Result next_job(JobInput& job) {
    if (!multi_) {
      const auto r = next_record(job.args);
      if (r == Result::Job) job.seq = ++seq_;
      return r;
    }
    // Several records per job (-n, -N, -m, -X): up to max_args_, and with -m/-X as many as fit in
    // max_chars_. A pipe that would block keeps what is gathered: the job waits for its records.
    for (;;) {
      if (!held_) {
        std::vector<std::string> record;
        const auto r = next_record(record);
        if (r == Result::WouldBlock) return Result::WouldBlock;
        if (r == Result::End) break;
        held_ = std::move(record);
      }
      if (max_args_ == 0) {  // -N0: one job per record, without its arguments
        held_.reset();
        job.seq = ++seq_;
        job.args.clear();
        return Result::Job;
      }
      if (fill_) {
        // The command's length grows by each argument's own expansion and a space per {}: counted
        // incrementally (expanding the whole command per argument would be quadratic).
        std::size_t grown = pending_length_;
        bool first = pending_.empty();
        for (const auto& value : *held_) {
          const std::size_t one = template_.expand({value}, seq_ + 1, 1, true, context_).size();
          grown += first ? one - base_length_ : template_.expand({value, value}, seq_ + 1, 1, true, context_).size() - one;
          first = false;
        }
        if (!pending_.empty() && grown >= max_chars_) break;  // >=: GNU counts a NUL too
        if (grown >= max_chars_ && exit_too_long_) {
          std::string shown = join_words(*held_);
          if (shown.size() > 50) shown = shown.substr(0, 50) + "...";
          throw InputStop(fmt::format("Command line too long ({} >= {}) at input 0: {}", grown, max_chars_, shown));
        }
        pending_length_ = grown;
      }
      pending_.insert(pending_.end(), held_->begin(), held_->end());
      pending_sizes_.push_back(held_->size());
      held_.reset();
      if (++pending_records_ >= records_per_job()) break;
    }
    if (pending_records_ == 0) return Result::End;
    job.seq = ++seq_;
    job.args = std::move(pending_);
    job.record_sizes = std::move(pending_sizes_);
    pending_.clear();
    pending_sizes_.clear();
    pending_records_ = 0;
    pending_length_ = base_length_;
    return Result::Job;
  }

  [[nodiscard]] int wait_fd() const override { return first_reader_ ? first_reader_->fd() : -1; }

  [[nodiscard]] std::optional<std::uint64_t> count_total() const override {
    const auto records = count_records();
    if (!records || !multi_) return records;
    if (fill_) return std::nullopt;  // depends on the lengths
    return max_args_ == 0 ? *records : (*records + max_args_ - 1) / max_args_;
  }

  [[nodiscard]] std::string command_for(const JobInput& job, unsigned slot) const override {
    return template_.expand(job.args, job.seq, slot, true, context_);
  }
  [[nodiscard]] const std::vector<std::string>& column_names() const override { return names_; }
  [[nodiscard]] std::string with_named_columns(const std::string& text) const override {
    return with_column_numbers(text);
  }
  [[nodiscard]] bool needs_total() const override { return template_.needs_total(); }
  void set_total(std::uint64_t jobs) override { template_.set_totals(jobs, jobs_); }

 private:
  [[nodiscard]] std::size_t records_per_job() {
    if (!fill_ || spread_checked_) return per_job_;
    // -m/-X as GNU parallel: a known input is spread evenly over the job slots.
    spread_checked_ = true;
    if (const auto records = count_records())
      per_job_ = std::min<std::size_t>(per_job_, std::max<std::uint64_t>(1, (*records + jobs_ - 1) / jobs_));
    return per_job_;
  }
  [[nodiscard]] std::optional<std::uint64_t> count_records() const {
    std::uint64_t product = 1;
    for (const auto& group : others_) product *= group.size();
    if (!first_reader_) return product * first_size_;
    if (csv_) return std::nullopt;  // a CSV record may span lines
    const auto lines = count_lines(first_path_, false, delimiter_, skip_empty_);
    if (!lines) return std::nullopt;
    return product * (*lines - std::min<std::uint64_t>(*lines, header_lines_));
  }

  /// The streamed first source's next line, or with --csv its next record (lines joined while a
  /// quoted field is open; a record still open at the end is returned as it is, and fails to parse).
  LineReader::Result next_first_record(std::string& value, bool wait) {
    for (;;) {
      std::string line;
      const auto r = wait ? first_reader_->next_waiting(line) : first_reader_->next(line);
      if (!csv_ || r == LineReader::Result::WouldBlock) {
        if (r == LineReader::Result::Line) value = std::move(line);
        return r;
      }
      if (r == LineReader::Result::End) {
        if (!csv_open_) return r;
        value = std::move(csv_partial_);
        csv_partial_.clear();
        csv_open_ = false;
        return LineReader::Result::Line;
      }
      if (csv_open_) csv_partial_.append(delimiter_);
      csv_partial_.append(line);
      if (std::count(line.begin(), line.end(), '"') % 2 == 1) csv_open_ = !csv_open_;
      if (csv_open_) continue;
      value = std::move(csv_partial_);
      csv_partial_.clear();
      return LineReader::Result::Line;
    }
  }

  /// Gives each empty member of `group` one empty value; notes whether any member has values.
  void fill_empty_members(SourceGroup& group) {
    for (auto& member : group.members) {
      if (member.empty()) member.emplace_back();
      else memory_values_ = true;
    }
  }
  SourceGroup make_group(const std::vector<const ArgSource*>& sources, const Options& options) {
    SourceGroup group;
    group.wrap = options.link;
    for (const auto* source : sources) {
      group.members.push_back(read_whole_source(*source, options));
      take_header(group.members.back());
      if (!csv_) continue;
      for (const auto& value : group.members.back()) {  // --csv: a malformed record stops the run before any job
        std::vector<std::string> columns;
        splitter_.split(value, columns);
      }
    }
    return group;
  }

  // --header: a source's first line names its columns (split as its values are); the header lines
  // are not arguments.
  void take_header(std::vector<std::string>& values) {
    if (header_lines_ == 0) return;
    if (!values.empty()) splitter_.split(values.front(), names_);
    values.erase(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(std::min(header_lines_, values.size())));
  }

  // {name}, {name.}, {name/}, {name//}, {name/.} become {N}... for the named column.
  std::string with_column_numbers(std::string text) const {
    for (std::size_t i = 0; i < names_.size(); ++i) {
      const std::string& name = names_[i];
      if (name.empty() || name.find_first_not_of("0123456789") == std::string::npos) continue;
      for (const char* modifier : {"", ".", "/", "//", "/."}) {
        const std::string from = "{" + name + modifier + "}";
        const std::string to = "{" + std::to_string(i + 1) + modifier + "}";
        for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
          text.replace(at, from.size(), to);
      }
    }
    return text;
  }

  CommandTemplate template_;
  ColumnSplitter splitter_;
  bool csv_ = false;
  std::string csv_partial_;  // --csv: a streamed record with an open quoted field, so far
  bool csv_open_ = false;
  std::string delimiter_;
  bool skip_empty_ = false;
  bool multi_ = false, fill_ = false, context_ = false;  // several records per job: -n/-N, -m/-X
  std::size_t max_args_, per_job_, max_chars_;
  bool exit_too_long_ = false;  // -x
  ContinuedLines first_lines_;  // the streamed first source's -r and -L
  unsigned jobs_;
  bool spread_checked_ = false;
  std::optional<std::vector<std::string>> held_;  // read, not yet in a job
  std::vector<std::string> pending_;              // the next job's arguments so far
  std::vector<std::size_t> pending_sizes_;        // how many of them each record gave
  std::size_t pending_records_ = 0;
  std::size_t header_lines_ = 0;    // --header: lines at the start of each source that name its columns
  std::vector<std::string> names_;  // the column names, in the order of a job's arguments
  std::size_t base_length_ = 0, pending_length_ = 0;  // -m/-X: the command's length
  std::unique_ptr<LineReader> first_reader_;
  std::string first_path_;
  SourceGroup first_group_;
  std::size_t first_size_ = 0, first_pos_ = 0;
  std::vector<SourceGroup> others_;
  std::vector<std::size_t> odometer_;
  std::vector<std::string> first_columns_;
  bool have_first_ = false;
  bool odometer_done_ = false;
  bool any_empty_ = false;       // every source is empty: no job
  bool memory_values_ = false;   // a source read whole has values
  bool first_read_ = false;      // the streamed first source gave a value
  std::uint64_t seq_ = 0;
};

} // namespace

// --shuf, and --plus's {##} {0#}: every job generated first (the input read to its end); with --shuf
// shuffled, then numbered 1, 2, 3... in the order they run, as GNU parallel numbers them.
class BufferedSource final : public JobSource {
 public:
  BufferedSource(std::unique_ptr<JobSource> inner, bool shuffle) : inner_(std::move(inner)), shuffle_(shuffle) {
    JobInput job;
    while (inner_->next_waiting(job) == Result::Job) jobs_.push_back(job);
    if (shuffle_) std::shuffle(jobs_.begin(), jobs_.end(), std::mt19937_64(std::random_device{}()));
    inner_->set_total(jobs_.size());
  }
  Result next(JobInput& job) override {
    if (next_ == jobs_.size()) return Result::End;
    job = std::move(jobs_[next_++]);
    if (shuffle_) job.seq = next_;
    return Result::Job;
  }
  [[nodiscard]] int wait_fd() const override { return -1; }
  [[nodiscard]] std::optional<std::uint64_t> count_total() const override { return jobs_.size(); }
  [[nodiscard]] std::string command_for(const JobInput& job, unsigned slot) const override {
    return inner_->command_for(job, slot);
  }
  [[nodiscard]] const std::vector<std::string>& column_names() const override { return inner_->column_names(); }
  [[nodiscard]] std::string with_named_columns(const std::string& text) const override {
    return inner_->with_named_columns(text);
  }
  [[nodiscard]] std::string wrap_command(const JobInput& job, const std::string& command) const override {
    return inner_->wrap_command(job, command);
  }

 private:
  std::unique_ptr<JobSource> inner_;
  bool shuffle_;
  std::vector<JobInput> jobs_;
  std::size_t next_ = 0;
};

// --retry-failed: GNU parallel runs the failed jobs of the joblog again, commands as logged.
class RetrySource final : public JobSource {
 public:
  explicit RetrySource(const std::map<std::uint64_t, std::string>& failed) : jobs_(failed.begin(), failed.end()) {}
  Result next(JobInput& job) override {
    if (next_ == jobs_.size()) return Result::End;
    job.seq = jobs_[next_].first;
    job.args.assign(1, jobs_[next_].second);
    ++next_;
    return Result::Job;
  }
  [[nodiscard]] int wait_fd() const override { return -1; }
  [[nodiscard]] std::optional<std::uint64_t> count_total() const override { return jobs_.size(); }
  [[nodiscard]] std::string command_for(const JobInput& job, unsigned) const override { return job.args[0]; }

 private:
  std::vector<std::pair<std::uint64_t, std::string>> jobs_;
  std::size_t next_ = 0;
};

std::unique_ptr<JobSource> make_retry_source(const std::map<std::uint64_t, std::string>& failed) {
  return std::make_unique<RetrySource>(failed);
}

std::unique_ptr<JobSource> make_job_source(const Options& options) {
  if (options.pipe != PipeMode::None && options.tee) return make_tee_source(options, std::make_unique<TemplateSource>(options));
  if (options.pipe != PipeMode::None) return make_pipe_source(options);
  std::unique_ptr<JobSource> source;
  if (options.template_mode) source = std::make_unique<TemplateSource>(options);
  else source = std::make_unique<BatchSource>(options.batch_file, options.delimiter);
  const bool tag_needs_total =
      options.plus && options.tagstring && CommandTemplate(*options.tagstring, "{}", true, false).needs_total();
  if (options.shuffle || source->needs_total() || tag_needs_total)
    return std::make_unique<BufferedSource>(std::move(source), options.shuffle);
  return source;
}

} // namespace procpool::cli
