#pragma once
// Running procpool run and GNU parallel side by side (issue 15): the same arguments through both,
// comparing stdout, exit status and joblogs (timing columns masked).
#include "cli_helpers.hpp"

#include <cstdlib>
#include <map>
#include <string>

namespace clitest {

struct Both {
  testing::ProgramResult gnu, pp;
};

inline void require_gnu() {
  REQUIRE_MESSAGE(std::system("command -v parallel >/dev/null 2>&1") == 0,
                  "GNU parallel must be installed (scripts/install-deps.sh)");
}

/// `parallel ARGS` and `procpool run ARGS` in `dir` (ARGS is shell text); PREFIX goes before each
/// (variables, `cd`).
inline Both run_both(const TempDir& dir, const std::string& args, const std::string& stdin_text = "",
                     const std::string& prefix = "") {
  require_gnu();
  return {sh(dir, prefix + "parallel --will-cite " + args, stdin_text, 90s),
          sh(dir, prefix + "$P run " + args, stdin_text, 90s)};
}

/// The same stdout and exit status.
inline void check_same(const Both& b, const std::string& what) {
  INFO(what, "\nGNU stderr: ", b.gnu.err, "\nprocpool stderr: ", b.pp.err);
  CHECK(b.pp.out == b.gnu.out);
  CHECK(b.pp.exit_code == b.gnu.exit_code);
  CHECK((!b.gnu.out.empty() || b.gnu.exit_code != 0));  // GNU parallel did run something
}

/// A joblog's text with Starttime and JobRuntime replaced by "T", rows in Seq order.
inline std::string masked_joblog(const std::string& text) {
  std::map<long, std::string> rows;
  std::string header;
  for (const auto& line : lines_of(text)) {
    auto f = split_tabs(line);
    if (f.size() != 9 || f[0] == "Seq") { header += line + "\n"; continue; }
    f[2] = f[3] = "T";
    std::string row;
    for (std::size_t i = 0; i < f.size(); ++i) row += (i > 0 ? "\t" : "") + f[i];
    rows[std::stol(f[0])] = row + "\n";
  }
  for (const auto& [seq, row] : rows) header += row;
  return header;
}


} // namespace clitest
