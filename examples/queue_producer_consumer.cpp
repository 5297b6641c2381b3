// Twin of the seed's Producer/Consumer threads over a thread queue (queue.Queue, here
// procpool::dummy::Queue): the producer puts 0..4, the consumer gets five values, each
// sleeping a random time up to max_sleep seconds (1.0 in the seed) between steps.
// Usage: queue_producer_consumer [max_sleep_seconds]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <utility>

#include <procpool/procpool.hpp>

namespace {
double max_sleep = 1.0;

void random_sleep(std::mt19937& rng) {
  std::uniform_real_distribution<double> dist(0.0, max_sleep);
  std::this_thread::sleep_for(std::chrono::duration<double>(dist(rng)));
}

class Producer : public procpool::threading::Thread {
public:
  Producer(std::string name, procpool::dummy::Queue<int>& queue)
      : Thread(procpool::threading::ThreadOptions{.name = std::move(name), .daemon = std::nullopt}), data_(queue) {}
  ~Producer() override {
    if (is_alive()) join();  // run() uses our members
  }

protected:
  void run() override {
    std::mt19937 rng(std::random_device{}());
    for (int i = 0; i < 5; ++i) {
      std::printf("%s, %d\n", name().c_str(), i);
      std::fflush(stdout);
      data_.put(i);
      random_sleep(rng);
    }
  }

private:
  procpool::dummy::Queue<int>& data_;
};

class Consumer : public procpool::threading::Thread {
public:
  Consumer(std::string name, procpool::dummy::Queue<int>& queue)
      : Thread(procpool::threading::ThreadOptions{.name = std::move(name), .daemon = std::nullopt}), data_(queue) {}
  ~Consumer() override {
    if (is_alive()) join();
  }

protected:
  void run() override {
    std::mt19937 rng(std::random_device{}());
    for (int i = 0; i < 5; ++i) {
      const int val = data_.get();
      std::printf("%s, %d\n", name().c_str(), val);
      std::fflush(stdout);
      random_sleep(rng);
    }
  }

private:
  procpool::dummy::Queue<int>& data_;
};
} // namespace

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  if (argc > 1) max_sleep = std::atof(argv[1]);
  procpool::dummy::Queue<int> queue;
  Producer producer("Producer", queue);
  Consumer consumer("Consumer", queue);
  producer.start();
  consumer.start();
  producer.join();
  consumer.join();
  return 0;
}
