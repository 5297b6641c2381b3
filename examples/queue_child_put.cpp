// Twin of the seed's Queue example: a child puts [42, None, 'hello'] and the parent prints it.
//   def f(q): q.put([42, None, 'hello'])
// The Python list of mixed types becomes a std::tuple with an optional for None.
// Usage: queue_child_put [fork|spawn|forkserver]
#include <cstdio>
#include <optional>
#include <string>
#include <tuple>

#include <procpool/procpool.hpp>

namespace {
using Message = std::tuple<int, std::optional<int>, std::string>;

void f(procpool::Queue<Message>& q) { q.put(Message{42, std::nullopt, "hello"}); }

std::string repr(const Message& m) {
  const auto& [number, maybe, text] = m;
  return "[" + std::to_string(number) + ", " + (maybe ? std::to_string(*maybe) : "None") + ", '" + text + "']";
}
} // namespace

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  if (argc > 1) procpool::set_start_method(argv[1]);
  procpool::Queue<Message> q;
  procpool::Process p(&f, q);
  p.start();
  std::printf("%s\n", repr(q.get()).c_str());  // prints "[42, None, 'hello']"
  p.join();
  return 0;
}
