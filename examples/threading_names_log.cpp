// PyMOTW threading_names_log: the thread name in every log line, through procpool's logger
// (Python: logging.basicConfig(format='[%(levelname)s] (%(threadName)-10s) %(message)s')).
#include <chrono>
#include <thread>

#include <procpool/log.hpp>
#include <procpool/procpool.hpp>

namespace threading = procpool::threading;
using namespace std::chrono_literals;

void worker() {
  procpool::logger().debug("Starting");
  std::this_thread::sleep_for(2s);
  procpool::logger().debug("Exiting");
}

void my_service() {
  procpool::logger().debug("Starting");
  std::this_thread::sleep_for(3s);
  procpool::logger().debug("Exiting");
}

int main() {
  procpool::set_log_level(spdlog::level::debug);
  procpool::set_log_pattern("[%l] (%-10k) %v");  // %k: the thread's name

  threading::Thread t({.name = "my_service"}, my_service);
  threading::Thread w({.name = "worker"}, worker);
  threading::Thread w2(worker);  // use default name
  w.start();
  w2.start();
  t.start();
}
