// Twin of the seed's write_task/read_task example: one process writes five messages into a
// Queue, another sleeps 1 s and then reads while the queue is not empty.
// Usage: queue_write_read [fork|spawn|forkserver]
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include <procpool/procpool.hpp>

namespace {
void write_task(procpool::Queue<std::string>& q) {
  if (!q.full()) {
    for (int i = 0; i < 5; ++i) q.put("msg" + std::to_string(i));
  }
}

void read_task(procpool::Queue<std::string>& q) {
  std::this_thread::sleep_for(std::chrono::seconds(1));
  while (!q.empty()) std::printf("%s\n", q.get(true, std::chrono::seconds(2)).c_str());
  std::fflush(stdout);
}
} // namespace

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  if (argc > 1) procpool::set_start_method(argv[1]);
  procpool::Queue<std::string> q;
  procpool::Process pw(&write_task, q);
  procpool::Process pr(&read_task, q);
  pw.start();
  pr.start();
  pw.join();
  pr.join();
  return 0;
}
