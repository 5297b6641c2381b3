#pragma once
// GNU parallel's options that `procpool run` does not implement: each is refused (exit 255) with a
// message naming what to use instead, never accepted and ignored (issue 15). One table, also
// registered with CLI11 so that their values are consumed like GNU parallel's.
#include <span>
#include <string_view>

namespace procpool::cli {

struct RefusedOption {
  std::string_view names;   ///< CLI11 names, GNU parallel's spellings: "-X,--xargs"
  bool takes_value;         ///< GNU parallel reads a value after it (=s, =i, =f)
  std::string_view advice;  ///< the closest supported option, or what to do instead
};

/// Every GNU parallel 20221122 option that procpool run refuses.
std::span<const RefusedOption> refused_gnu_options();

} // namespace procpool::cli
