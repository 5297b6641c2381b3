// Twin of the seed's first Process example: the main process starts a child and ends while
// the child may still run; at exit, like Python, the non-daemon child is joined.
// Usage: process_hello [fork|spawn|forkserver]
#include <chrono>
#include <cstdio>
#include <thread>

#include <procpool/procpool.hpp>

namespace {
void test(int interval) {
  std::this_thread::sleep_for(std::chrono::milliseconds(100 * interval));
  std::printf("I am a subprocess (%s)\n", procpool::current_process().name.c_str());
}
} // namespace

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  if (argc > 1) procpool::set_start_method(argv[1]);
  std::printf("Main process start\n");
  std::fflush(stdout);
  procpool::Process p(&test, 1);
  p.start();
  std::printf("End of main process\n");
  std::fflush(stdout);
  return 0;  // the child is joined at exit, so its line still appears
}
