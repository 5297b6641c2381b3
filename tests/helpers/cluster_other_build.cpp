// Another build of "the program" for Pool.Cluster.Failure: a cluster program (it includes
// procpool/cluster.hpp) whose ELF build-id differs from the test binary's. Started as
// `cluster_other_build --procpool-worker URL ...` it serves the queue and must refuse the tests' tasks.
#include <procpool/cluster.hpp>
#include <procpool/procpool.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  procpool::init(argc, argv);  // --procpool-worker: serves until stopped, never returns
  std::puts("cluster_other_build: start me with --procpool-worker URL");
  return 2;
}
