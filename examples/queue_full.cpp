// Twin of the seed's Queue(3) example: three puts fill the queue, a fourth put with a 2 s
// timeout raises Full, then the queue is drained with get_nowait and put_nowait works again.
//   q = Queue(3); q.put("message1"); ...; q.put("message4", True, 2) -> Full
#include <chrono>
#include <cstdio>
#include <string>

#include <procpool/procpool.hpp>

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  procpool::Queue<std::string> q(3);
  q.put("message1");
  q.put("message2");
  q.put("message3");
  try {
    q.put("message4", true, std::chrono::seconds(2));
  } catch (const procpool::Full&) {
    std::printf("Queue Full,count:%zu\n", q.qsize());
  }
  if (!q.empty()) {
    const std::size_t n = q.qsize();
    for (std::size_t i = 0; i < n; ++i) std::printf("%s\n", q.get_nowait().c_str());
  }
  if (!q.full()) q.put_nowait("message4");
  std::printf("after put_nowait, count:%zu\n", q.qsize());
  return 0;
}
