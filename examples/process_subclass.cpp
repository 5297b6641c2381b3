// Twin of the seed's SubProcess example: a Process subclass that overrides run() and sleeps
// for its interval; p1 is named "mrsoft", p2 keeps its default name.
// Usage: process_subclass [interval scale, default 1.0]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include <unistd.h>

#include <procpool/procpool.hpp>

namespace {

class SubProcess : public procpool::Process {
public:
  explicit SubProcess(double interval, std::string name = "")
      : procpool::Process(procpool::ProcessOptions{.name = std::move(name)}), interval_(interval) {}

  void run() override {
    std::printf("Child process (%d) started, parent %d, name %s\n", static_cast<int>(::getpid()),
                static_cast<int>(::getppid()), procpool::current_process().name.c_str());
    const auto t_start = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(interval_));
    const auto t_stop = std::chrono::steady_clock::now();
    std::printf("Child process (%d) finished in %.2f s\n", static_cast<int>(::getpid()),
                std::chrono::duration<double>(t_stop - t_start).count());
  }

private:
  double interval_;
};

} // namespace

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  const double scale = argc > 1 ? std::atof(argv[1]) : 1.0;
  std::printf("Parent process (%d) start\n", static_cast<int>(::getpid()));
  std::fflush(stdout);
  SubProcess p1(1 * scale, "mrsoft");
  SubProcess p2(2 * scale);
  p1.start();
  p2.start();
  std::printf("p1.name = %s, p1.pid = %d\n", p1.name().c_str(), static_cast<int>(*p1.pid()));
  std::printf("p2.name = %s, p2.pid = %d\n", p2.name().c_str(), static_cast<int>(*p2.pid()));
  std::fflush(stdout);
  p1.join();
  p2.join();
  std::printf("Parent process end, exit codes %d %d\n", *p1.exitcode(), *p2.exitcode());
  return 0;
}
