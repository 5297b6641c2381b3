#pragma once
// GNU parallel's bash-like --plus replacement strings ({:-x} {:n:m} {#re} {##re} {%re} {%%re} {/re/s}
// {//re/s} {/#re/s} {/%re/s} {^re} {^^re} {,re} {,,re}): recognised as GNU parallel recognises them
// (its own patterns, longest definition first) and applied as its Perl substitutions, the patterns
// being Perl regexes (PCRE2 on bytes, as Perl on GNU parallel's byte strings).
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace procpool::cli {

class PerlRegex;

/// One bash-like string applied to a value.
class PlusEdit {
 public:
  enum class Op {
    Replace, ReplacePrefix, ReplaceSuffix, ReplaceAll, RemoveLongPrefix, Substring, RemovePrefix, Default,
    RemoveLongSuffix, UpperAll, LowerAll, RemoveSuffix, UpperFirst, LowerFirst, Skip
  };
  /// Throws UsageError when the string's pattern does not compile.
  PlusEdit(Op op, std::string first, std::string second);
  ~PlusEdit();
  PlusEdit(const PlusEdit&) = delete;
  PlusEdit& operator=(const PlusEdit&) = delete;
  [[nodiscard]] std::string apply(const std::string& value) const;

 private:
  Op op_;
  std::string first_, second_;  // the string's parts: a pattern, a replacement, a default, numbers
  std::unique_ptr<PerlRegex> regex_;
};

struct PlusMatch {
  std::size_t length = 0;  ///< characters of the template taken, braces included
  long position = 0;       ///< 0: every argument; N: the Nth; -N: the Nth from the end
  std::shared_ptr<const PlusEdit> edit;
};

/// The bash-like string starting at text[pos] ('{'), positional ({2#re}) or not, if there is one.
/// Throws UsageError when its regex does not compile.
std::optional<PlusMatch> match_plus_edit(std::string_view text, std::size_t pos);

/// GNU parallel's make_regexp_ungreedy: every quantifier outside a character class made lazy.
std::string make_regexp_ungreedy(std::string_view regexp);

} // namespace procpool::cli
