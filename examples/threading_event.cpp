// Twin of PyMOTW's threading_event.py: one worker blocks on the Event, another waits with a
// timeout and gives up before the main thread sets it.
// Usage: threading_event [threads|processes|fork|spawn|forkserver] [time-scale]
#include <chrono>
#include <functional>

#include <procpool/procpool.hpp>

#include "sync_example_mode.hpp"

using sync_examples::say;

template <class mp>
void wait_for_event(typename mp::Event& e) {
  say("(%-10s) wait_for_event starting", mp::current_name().c_str());
  e.wait();
  say("(%-10s) e.is_set()->%s", mp::current_name().c_str(), e.is_set() ? "True" : "False");
}

template <class mp>
void wait_for_event_timeout(typename mp::Event& e, double t) {
  say("(%-10s) wait_for_event_timeout starting", mp::current_name().c_str());
  e.wait(std::chrono::duration<double>(t));
  say("(%-10s) e.is_set()->%s", mp::current_name().c_str(), e.is_set() ? "True" : "False");
}

template <class mp>
int run(double scale) {
  typename mp::Event e;
  typename mp::Process t1(typename mp::ProcessOptions{.name = "block"}, &wait_for_event<mp>, std::ref(e));
  t1.start();
  typename mp::Process t2(typename mp::ProcessOptions{.name = "non-block"}, &wait_for_event_timeout<mp>, std::ref(e),
                         2 * scale);
  t2.start();
  say("(%-10s) Waiting before calling Event.set()", mp::current_name().c_str());
  sync_examples::pause_for(3 * scale);
  e.set();
  say("(%-10s) Event is set", mp::current_name().c_str());
  t1.join();
  t2.join();
  return 0;
}

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  const double scale = sync_examples::time_scale(argc, argv);
  return sync_examples::run_in_mode(argc, argv, [&](auto mode) { return run<decltype(mode)>(scale); });
}
