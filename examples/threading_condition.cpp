// Twin of PyMOTW's threading_condition.py: two consumers wait on a Condition until the
// producer makes the resource available and notifies them all. The consumers wait for a
// shared flag (wait_for), so one that starts late does not miss the notification.
// Usage: threading_condition [threads|processes|fork|spawn|forkserver] [time-scale]
#include <functional>
#include <mutex>

#include <procpool/procpool.hpp>

#include "sync_example_mode.hpp"

using sync_examples::say;

template <class mp>
void consumer(typename mp::Condition& cond, typename mp::template RawValue<int>& available) {
  say("(%-2s) Starting consumer thread", mp::current_name().c_str());
  std::lock_guard guard(cond);
  cond.wait_for([&] { return available.get_obj() != 0; });
  say("(%-2s) Resource is available to consumer", mp::current_name().c_str());
}

template <class mp>
void producer(typename mp::Condition& cond, typename mp::template RawValue<int>& available) {
  say("(%-2s) Starting producer thread", mp::current_name().c_str());
  std::lock_guard guard(cond);
  say("(%-2s) Making resource available", mp::current_name().c_str());
  available.get_obj() = 1;
  cond.notify_all();
}

template <class mp>
int run(double scale) {
  typename mp::Condition condition;
  typename mp::template RawValue<int> available(0);
  typename mp::Process c1(typename mp::ProcessOptions{.name = "c1"}, &consumer<mp>,
                          std::ref(condition), std::ref(available));
  typename mp::Process c2(typename mp::ProcessOptions{.name = "c2"}, &consumer<mp>,
                          std::ref(condition), std::ref(available));
  typename mp::Process p(typename mp::ProcessOptions{.name = "p"}, &producer<mp>,
                         std::ref(condition), std::ref(available));
  c1.start();
  sync_examples::pause_for(2 * scale);
  c2.start();
  sync_examples::pause_for(2 * scale);
  p.start();
  c1.join();
  c2.join();
  p.join();
  return 0;
}

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  const double scale = sync_examples::time_scale(argc, argv);
  return sync_examples::run_in_mode(argc, argv, [&](auto mode) { return run<decltype(mode)>(scale); });
}
