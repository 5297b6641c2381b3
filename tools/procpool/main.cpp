// procpool: run a batch of shell commands on N workers, GNU parallel style. See the README (The procpool command).
#include "options.hpp"
#include "runner.hpp"
#include "semaphore.hpp"
#ifdef PROCPOOL_BROKER
#include "broker/broker.hpp"
#endif

#include <procpool/version.hpp>

#include <fmt/format.h>

#include <cerrno>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace {

void print_top_help() {
  std::cout << "procpool " PROCPOOL_VERSION
            << ": Python's multiprocessing for C++, and this job runner.\n\n"
               "Usage:\n"
               "  procpool run [OPTIONS] [BATCH_FILE|-]\n"
               "  procpool run [OPTIONS] TEMPLATE ::: ARG...\n"
               "  procpool sem [-j N] [--id NAME] [--fg] COMMAND...  a counting semaphore (GNU sem); sem --wait\n"
               "  procpool worker --broker URL [-j N] [OPTIONS]      run jobs from a Redis queue (docs/broker.md)\n"
               "  procpool run --broker URL [OPTIONS] BATCH          send a batch to the workers\n"
               "  procpool status --broker URL [--json] [--watch D]  queues, workers, runs\n"
               "  procpool --help | --version\n\n"
            << procpool::cli::run_help_text();
}

/// Puts /dev/null on whichever of stdin, stdout and stderr is closed (`>&-`). Otherwise the next
/// file procpool opens (the joblog, a pipe) would take that number, and the jobs' output or procpool's
/// messages would be written into it. Must run before anything opens a file.
void occupy_standard_descriptors() {
  for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    const int null_fd = ::open("/dev/null", fd == STDIN_FILENO ? O_RDONLY : O_WRONLY);
    if (null_fd < 0) ::_exit(255);  // nowhere safe to say so
    if (null_fd != fd) {            // lower numbers are open by now, so this does not happen; be sure
      ::dup2(null_fd, fd);
      ::close(null_fd);
    }
  }
}

} // namespace

int main(int argc, char** argv) {
  occupy_standard_descriptors();
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    print_top_help();
    return args.empty() ? 255 : 0;
  }
  if (args[0] == "--version" || args[0] == "-V") {
    std::cout << "procpool " PROCPOOL_VERSION "\n";
    return 0;
  }
  if (args[0] != "run" && args[0] != "worker" && args[0] != "status" && args[0] != "sem") {
    std::cerr << fmt::format("procpool: unknown command '{}'; try: procpool run --help\n", args[0]);
    return 255;
  }
  try {
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    if (args[0] == "sem" || (args[0] == "run" && procpool::cli::is_semaphore_run(procpool::cli::with_parallel_env(rest)))) {
      const auto options = procpool::cli::parse_sem_options(procpool::cli::with_parallel_env(rest));
      return options ? procpool::cli::run_semaphore(*options) : 0;
    }
#ifdef PROCPOOL_BROKER
    namespace broker = procpool::cli::broker;
    if (args[0] == "worker") {
      const auto options = procpool::cli::parse_worker_options(rest);
      return options ? broker::run_worker(*options) : 0;
    }
    if (args[0] == "status") {
      const auto options = procpool::cli::parse_status_options(rest);
      return options ? broker::show_status(*options) : 0;
    }
#else
    if (args[0] != "run") {
      std::cerr << "procpool: built without broker support (install libhiredis-dev and rebuild)\n";
      return 255;
    }
#endif
    const auto options = procpool::cli::parse_run_options(procpool::cli::with_parallel_env(rest));
    if (!options) return 0;  // --help
#ifdef PROCPOOL_BROKER
    if (options->broker && !options->dry_run) return broker::submit_run(*options);
#else
    if (options->broker && !options->dry_run) {
      std::cerr << "procpool: built without broker support (install libhiredis-dev and rebuild)\n";
      return 255;
    }
#endif
    return procpool::cli::run_jobs(*options);
  } catch (const procpool::cli::UsageError& e) {
    std::cerr << "procpool: " << e.what() << "\n";
    return 255;
#ifdef PROCPOOL_BROKER
  } catch (const procpool::broker::ConfigError& e) {
    std::cerr << "procpool: " << e.what() << "\n";
    return 255;
#endif
  } catch (const std::exception& e) {
    std::cerr << "procpool: error: " << e.what() << "\n";
    return 255;
  }
}
