// procpool: run a batch of shell commands on N workers, GNU parallel style. See the README (The procpool command).
#include "options.hpp"
#include "runner.hpp"

#include <fmt/format.h>

#include <exception>
#include <iostream>
#include <string>
#include <vector>

namespace {

constexpr const char* version = "0.1.0";

void print_top_help() {
  std::cout << "procpool " << version
            << ": Python's multiprocessing for C++, and this job runner.\n\n"
               "Usage:\n"
               "  procpool run [OPTIONS] [BATCH_FILE|-]\n"
               "  procpool run [OPTIONS] TEMPLATE ::: ARG...\n"
               "  procpool --help | --version\n\n"
            << procpool::cli::run_help_text();
}

} // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    print_top_help();
    return args.empty() ? 255 : 0;
  }
  if (args[0] == "--version" || args[0] == "-V") {
    std::cout << "procpool " << version << "\n";
    return 0;
  }
  if (args[0] != "run") {
    std::cerr << fmt::format("procpool: unknown command '{}'; try: procpool run --help\n", args[0]);
    return 255;
  }
  try {
    const auto options = procpool::cli::parse_run_options({args.begin() + 1, args.end()});
    if (!options) return 0;  // --help
    return procpool::cli::run_jobs(*options);
  } catch (const procpool::cli::UsageError& e) {
    std::cerr << "procpool: " << e.what() << "\n";
    return 255;
  } catch (const std::exception& e) {
    std::cerr << "procpool: error: " << e.what() << "\n";
    return 255;
  }
}
