// Must not compile: a std::unique_ptr cannot be a process pool's argument (an address means
// nothing in another process). Built with -DCONTROL, the thread backend's pool takes it and
// moves it into the task: procpool::dummy::Pool moves values, as multiprocessing.dummy passes
// references.
#include <memory>

#include <procpool/procpool.hpp>

int take(std::unique_ptr<int> p) { return *p; }

int main() {
#ifdef CONTROL
  procpool::dummy::Pool pool(1);
#else
  procpool::Pool pool(1);
#endif
  return pool.apply(&take, std::make_unique<int>(0));
}
