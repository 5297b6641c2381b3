// Twin of the multiprocessing docs' shared-memory example: a child sets a Value('d') and
// negates an Array('i', range(10)); the parent prints both.
//   num = Value('d', 0.0); arr = Array('i', range(10))
//   p = Process(target=f, args=(num, arr)); p.start(); p.join(); print(num.value); print(arr[:])
// Usage: process_value_array [threads|processes|fork|spawn|forkserver]
#include <cstdio>
#include <functional>
#include <ranges>
#include <string>

#include <procpool/procpool.hpp>

#include "sync_example_mode.hpp"

template <class mp>
void f(typename mp::template Value<double>& n, typename mp::template Array<int>& a) {
  n.set(3.1415927);
  for (std::size_t i = 0; i < a.size(); ++i) a.set(i, -a.get(i));
}

template <class mp>
int run() {
  typename mp::template Value<double> num(0.0);
  typename mp::template Array<int> arr(std::views::iota(0, 10));
  typename mp::Process p(&f<mp>, std::ref(num), std::ref(arr));
  p.start();
  p.join();
  std::printf("%.7f\n", num.value());
  std::string items;
  for (const int x : arr.to_vector()) items += (items.empty() ? "" : ", ") + std::to_string(x);
  std::printf("[%s]\n", items.c_str());
  return 0;
}

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  return sync_examples::run_in_mode(argc, argv, [](auto mode) { return run<decltype(mode)>(); });
}
