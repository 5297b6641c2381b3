// Twin of Python's Pipe example: the child sends [42, None, 'hello'] and closes its end; the
// parent receives it, and a second recv() sees end of file.
//   def f(conn): conn.send([42, None, 'hello']); conn.close()
// Usage: pipe_send_recv [fork|spawn|forkserver]
#include <cstdio>
#include <optional>
#include <string>
#include <tuple>

#include <procpool/procpool.hpp>

namespace {
using Message = std::tuple<int, std::optional<int>, std::string>;

void f(procpool::Connection<Message>& conn) {
  conn.send(Message{42, std::nullopt, "hello"});
  conn.close();
}

std::string repr(const Message& m) {
  const auto& [number, maybe, text] = m;
  return "[" + std::to_string(number) + ", " + (maybe ? std::to_string(*maybe) : "None") + ", '" + text + "']";
}
} // namespace

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  if (argc > 1) procpool::set_start_method(argv[1]);
  auto [parent_conn, child_conn] = procpool::Pipe<Message>();
  procpool::Process p(&f, child_conn);
  p.start();
  child_conn.close();  // as in CPython: the parent's copy; the child holds its own
  std::printf("%s\n", repr(parent_conn.recv()).c_str());  // prints "[42, None, 'hello']"
  try {
    (void)parent_conn.recv();
  } catch (const procpool::EOFError&) {
    std::printf("EOFError: the child closed its end\n");
  }
  p.join();
  return 0;
}
