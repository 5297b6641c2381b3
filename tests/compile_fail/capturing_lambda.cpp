// Must not compile: a capturing lambda cannot be a pool task (its captures would not reach a
// worker process). Built with -DCONTROL, the same call with a captureless lambda must compile,
// so that a broken include path cannot pass for the expected error.
#include <vector>

#include <procpool/procpool.hpp>

int main() {
  procpool::Pool pool(1);
#ifdef CONTROL
  auto out = pool.map([](int x) { return x + 1; }, std::vector<int>{1});
#else
  int offset = 1;
  auto out = pool.map([offset](int x) { return x + offset; }, std::vector<int>{1});
#endif
  return static_cast<int>(out.size());
}
