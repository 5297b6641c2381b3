// Must not compile: a std::unique_ptr cannot travel between processes (an address means nothing
// in another process). Built with -DCONTROL, the thread backend's queue of the same type must
// compile: procpool::dummy moves values through memory, as multiprocessing.dummy passes references.
#include <memory>

#include <procpool/procpool.hpp>

int main() {
#ifdef CONTROL
  procpool::dummy::Queue<std::unique_ptr<int>> q;
#else
  procpool::Queue<std::unique_ptr<int>> q;
#endif
  q.put(std::make_unique<int>(1));
  return *q.get() - 1;
}
