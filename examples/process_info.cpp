// Twin of the seed's Process example: info() prints the parent's and its own pid, f('bob')
// runs in a child. Usage: process_info [fork|spawn|forkserver]
#include <cstdio>
#include <string>

#include <unistd.h>

#include <procpool/procpool.hpp>

namespace {

void info(const std::string& title) {
  std::printf("%s\n", title.c_str());
  std::printf("process name: %s\n", procpool::current_process().name.c_str());
  std::printf("parent process: %d\n", static_cast<int>(::getppid()));
  std::printf("process id: %d\n", static_cast<int>(::getpid()));
}

void f(std::string name) {
  info("function f");
  std::printf("hello %s\n", name.c_str());
}

} // namespace

int main(int argc, char** argv) {
  procpool::init(argc, argv);  // like `if __name__ == '__main__':`
  if (argc > 1) procpool::set_start_method(argv[1]);
  info("main line");
  std::fflush(stdout);
  procpool::Process p(&f, std::string("bob"));
  p.start();
  p.join();
  return *p.exitcode();
}
