#define PCRE2_CODE_UNIT_WIDTH 8
#include "plus_strings.hpp"

#include "options.hpp"

#include <array>
#include <cctype>
#include <limits>
#include <vector>

#include <fmt/format.h>
#include <pcre2.h>

namespace procpool::cli {

/// A compiled Perl regex: PCRE2 on bytes with LF as the newline, as Perl on a byte string.
class PerlRegex {
 public:
  explicit PerlRegex(const std::string& pattern, const char* what) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    pcre2_compile_context* context = pcre2_compile_context_create(nullptr);
    pcre2_set_newline(context, PCRE2_NEWLINE_LF);
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), 0, &error, &offset,
                          context);
    pcre2_compile_context_free(context);
    if (code_ == nullptr) {
      std::array<PCRE2_UCHAR, 256> message{};
      pcre2_get_error_message(error, message.data(), message.size());
      throw UsageError(fmt::format("--plus: {}: the Perl regex '{}' does not compile: {} at offset {}", what, pattern,
                                   reinterpret_cast<const char*>(message.data()), offset));
    }
    pcre2_pattern_info(code_, PCRE2_INFO_CAPTURECOUNT, &groups_);
  }
  ~PerlRegex() { pcre2_code_free(code_); }
  PerlRegex(const PerlRegex&) = delete;
  PerlRegex& operator=(const PerlRegex&) = delete;

  /// Matches in `subject` from `offset` (only there when `anchored`); groups[0] the match, groups[N] the
  /// Nth group as {begin, end} (npos when it took no part).
  bool match(std::string_view subject, std::size_t offset, std::uint32_t options,
             std::vector<std::pair<std::size_t, std::size_t>>& groups) const {
    pcre2_match_data* data = pcre2_match_data_create_from_pattern(code_, nullptr);
    const int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), offset, options,
                               data, nullptr);
    const bool found = rc > 0;
    if (found) {
      const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data);
      groups.assign(groups_ + 1, {std::string_view::npos, std::string_view::npos});
      for (std::uint32_t i = 0; i < groups_ + 1 && i < static_cast<std::uint32_t>(rc); ++i)
        if (ovector[2 * i] != PCRE2_UNSET) groups[i] = {ovector[2 * i], ovector[2 * i + 1]};
    }
    pcre2_match_data_free(data);
    return found;
  }

  /// Perl's s/PATTERN/REPLACEMENT/ (/g when `global`: after an empty match the next may not be empty
  /// at the same place). `replace(subject, groups)` gives one match's replacement.
  template <typename F>
  std::string substitute(const std::string& subject, bool global, F&& replace) const {
    std::string out;
    std::vector<std::pair<std::size_t, std::size_t>> groups;
    std::size_t copied = 0, offset = 0;
    bool after_empty = false;
    while (offset <= subject.size()) {
      const std::uint32_t options = after_empty ? PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED : 0;
      if (!match(subject, offset, options, groups)) {
        if (!after_empty) break;
        after_empty = false;
        ++offset;  // no non-empty match here: look again one byte on
        continue;
      }
      out.append(subject, copied, groups[0].first - copied);
      out += replace(subject, groups);
      copied = offset = groups[0].second;
      if (!global) break;
      after_empty = groups[0].first == groups[0].second;
    }
    out.append(subject, copied);
    return out;
  }

 private:
  pcre2_code* code_ = nullptr;
  std::uint32_t groups_ = 0;
};

namespace {

std::string group_text(const std::string& subject, const std::pair<std::size_t, std::size_t>& group) {
  return group.first == std::string::npos ? std::string() : subject.substr(group.first, group.second - group.first);
}

// Perl's uc and lc on a byte string: ASCII letters only.
std::string ascii_case(std::string text, bool upper) {
  for (char& c : text) c = static_cast<char>(upper ? std::toupper(static_cast<unsigned char>(c))
                                                   : std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// A number as Perl reads a string of digits (\d+), saturated.
std::size_t to_count(const std::string& digits) {
  std::size_t n = 0;
  for (const char c : digits) {
    if (n > std::numeric_limits<std::size_t>::max() / 10 - 1) return std::numeric_limits<std::size_t>::max();
    n = n * 10 + static_cast<std::size_t>(c - '0');
  }
  return n;
}

struct Definition {
  std::string_view prefix;  // after the '{', up to the first group
  std::string_view groups;  // GNU parallel's group regexp
  PlusEdit::Op op;
};

// GNU parallel 20221122's %Global::plus bash-like entries, longest key first (the order in which it
// replaces them): key = "{" prefix groups "}".
constexpr std::array kDefinitions = {
    Definition{"/", "([^#%}/]+?)/([^}]*?)", PlusEdit::Op::Replace},
    Definition{"/#", "([^}]+?)/([^}]*?)", PlusEdit::Op::ReplacePrefix},
    Definition{"/%", "([^}]+?)/([^}]*?)", PlusEdit::Op::ReplaceSuffix},
    Definition{"//", "([^}]+?)/([^}]*?)", PlusEdit::Op::ReplaceAll},
    Definition{"##", "([^#}][^}]*?)", PlusEdit::Op::RemoveLongPrefix},
    Definition{":", "(\\d+?):(\\d+?)", PlusEdit::Op::Substring},
    Definition{"#", "([^#}][^}]*?)", PlusEdit::Op::RemovePrefix},
    Definition{":-", "([^}]+?)", PlusEdit::Op::Default},
    Definition{"%%", "([^}]+?)", PlusEdit::Op::RemoveLongSuffix},
    Definition{"^^", "([^}]+?)", PlusEdit::Op::UpperAll},
    Definition{",,", "([^}]+?)", PlusEdit::Op::LowerAll},
    Definition{"%", "([^}]+?)", PlusEdit::Op::RemoveSuffix},
    Definition{"^", "([^}]+?)", PlusEdit::Op::UpperFirst},
    Definition{",", "([^}]+?)", PlusEdit::Op::LowerFirst},
    Definition{":", "(\\d+?)", PlusEdit::Op::Skip},
};

// Each definition as two anchored regexes, as GNU parallel builds them: {PREFIX GROUPS} and the
// positional {N PREFIX GROUPS} (N may be negative; blanks may follow it).
struct Recognizer {
  std::unique_ptr<PerlRegex> plain, positional;
};

const std::vector<Recognizer>& recognizers() {
  static const std::vector<Recognizer> all = [] {
    std::vector<Recognizer> out;
    for (const auto& d : kDefinitions) {
      const std::string rest = fmt::format("\\Q{}\\E{}\\}}", d.prefix, d.groups);
      out.push_back({std::make_unique<PerlRegex>("\\{" + rest, "definition"),
                     std::make_unique<PerlRegex>("\\{(-?\\d+)\\s*" + rest, "definition")});
    }
    return out;
  }();
  return all;
}

} // namespace

std::string make_regexp_ungreedy(std::string_view regexp) {
  bool in_class = false, escaped = false, found = false;
  std::string out;
  for (const char c : regexp) {
    if (found) {
      if (c != '?') out += '?';
      found = false;
    }
    out += c;
    if (escaped) { escaped = false; continue; }
    if (c == '\\') { escaped = true; continue; }
    if (c == '[') { in_class = true; continue; }
    if (in_class) {
      if (c == ']') in_class = false;
      continue;
    }
    if (c == '*' || c == '}' || c == '+') found = true;
  }
  if (found) out += '?';
  return out;
}

PlusEdit::PlusEdit(Op op, std::string first, std::string second)
    : op_(op), first_(std::move(first)), second_(std::move(second)) {
  const std::string what = "a replacement string's pattern";
  // Perl takes a quantifier after ^ ({##*.} is s/^*\.//: ^ zero or more times, so not anchored); PCRE2
  // takes it after a group only.
  const std::string start = "(?:^)";
  auto compile = [&](const std::string& pattern) { regex_ = std::make_unique<PerlRegex>(pattern, what.c_str()); };
  switch (op_) {  // GNU parallel's Perl code for each, with $$1 = first_, $$2 = second_
    case Op::Replace: case Op::ReplaceAll: compile(first_); break;              // s/$$1/$$2/ (g)
    case Op::ReplacePrefix: compile(start + first_); break;                       // s/^$$1/$$2/g
    case Op::ReplaceSuffix: case Op::RemoveLongSuffix: compile(first_ + "$"); break;  // s/$$1$/$$2/g, s/$$1$//
    case Op::RemoveLongPrefix: compile(start + first_); break;                    // s/^$$1//
    case Op::RemovePrefix: compile(start + make_regexp_ungreedy(first_) + "(.*)"); break;  // s/^$ng(.*)/$1/
    case Op::RemoveSuffix: compile("(.*)" + make_regexp_ungreedy(first_) + "$"); break;  // s/(.*)$ng$/$1/
    case Op::UpperFirst: case Op::LowerFirst: compile(start + "(" + first_ + ")"); break;  // s/^($$1)/uc($1)/e
    case Op::UpperAll: case Op::LowerAll: compile("(" + first_ + ")"); break;       // s/($$1)/uc($1)/eg
    case Op::Substring: case Op::Default: case Op::Skip: break;
  }
}

PlusEdit::~PlusEdit() = default;

std::string PlusEdit::apply(const std::string& value) const {
  using Groups = std::vector<std::pair<std::size_t, std::size_t>>;
  const auto literal = [this](const std::string&, const Groups&) { return second_; };
  const auto nothing = [](const std::string&, const Groups&) { return std::string(); };
  const auto group1 = [](const std::string& s, const Groups& g) { return g.size() > 1 ? group_text(s, g[1]) : ""; };
  const auto upper = [&](const std::string& s, const Groups& g) { return ascii_case(group1(s, g), true); };
  const auto lower = [&](const std::string& s, const Groups& g) { return ascii_case(group1(s, g), false); };
  switch (op_) {
    case Op::Replace: return regex_->substitute(value, false, literal);
    case Op::ReplacePrefix: case Op::ReplaceSuffix: case Op::ReplaceAll: return regex_->substitute(value, true, literal);
    case Op::RemoveLongPrefix: case Op::RemoveLongSuffix: return regex_->substitute(value, false, nothing);
    case Op::RemovePrefix: case Op::RemoveSuffix: return regex_->substitute(value, false, group1);
    case Op::UpperFirst: return regex_->substitute(value, false, upper);
    case Op::UpperAll: return regex_->substitute(value, true, upper);
    case Op::LowerFirst: return regex_->substitute(value, false, lower);
    case Op::LowerAll: return regex_->substitute(value, true, lower);
    case Op::Default: return value.empty() || value == "0" ? first_ : value;  // $_ ||= $$1: "0" is false too
    case Op::Skip: return value.substr(std::min(value.size(), to_count(first_)));  // substr($_,0,$$1) = ""
    case Op::Substring: {  // $_ = substr($_,$$1,$$2): past the end is undef, an empty value
      const std::size_t from = to_count(first_);
      return from >= value.size() ? std::string() : value.substr(from, to_count(second_));
    }
  }
  return value;
}

std::optional<PlusMatch> match_plus_edit(std::string_view text, std::size_t pos) {
  std::vector<std::pair<std::size_t, std::size_t>> groups;
  const auto& all = recognizers();
  for (std::size_t i = 0; i < all.size(); ++i) {
    for (const bool positional : {false, true}) {
      const auto& regex = positional ? *all[i].positional : *all[i].plain;
      if (!regex.match(text, pos, PCRE2_ANCHORED, groups)) continue;
      const std::string subject(text);
      PlusMatch m;
      m.length = groups[0].second - groups[0].first;
      std::size_t next = 1;
      if (positional) {
        const std::string number = group_text(subject, groups[next++]);
        const bool negative = number.front() == '-';
        const std::size_t n = to_count(number.substr(negative ? 1 : 0));
        if (n == 0 || n > static_cast<std::size_t>(std::numeric_limits<long>::max())) continue;
        m.position = negative ? -static_cast<long>(n) : static_cast<long>(n);
      }
      std::string first = group_text(subject, groups[next]);
      std::string second = next + 1 < groups.size() ? group_text(subject, groups[next + 1]) : std::string();
      m.edit = std::make_shared<const PlusEdit>(kDefinitions[i].op, std::move(first), std::move(second));
      return m;
    }
  }
  return std::nullopt;
}

} // namespace procpool::cli
