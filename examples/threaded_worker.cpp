// Twin of the seed's ThreadedWorker + do_threaded_work: worker threads pull (index, item) pairs
// from a JoinableQueue, apply work_func, push (index, result) to a result queue; the caller
// joins the work queue, collects the results and, with preserve_result_ordering, sorts them
// back into input order. procpool::dummy queues are the thread backend (queue.Queue).
// Usage: threaded_worker [ordered|unordered]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <procpool/procpool.hpp>

namespace {
using WorkItem = std::pair<int, std::string>;  // (index, work item)

class ThreadedWorker : public procpool::threading::Thread {
public:
  ThreadedWorker(procpool::dummy::JoinableQueue<WorkItem>& work_queue, procpool::dummy::Queue<WorkItem>& result_queue,
                 std::function<std::string(const std::string&)> work_func, std::chrono::milliseconds queue_timeout)
      : Thread(procpool::threading::ThreadOptions{.name = {}, .daemon = true}),  // t.setDaemon(True)
        work_queue_(work_queue), result_queue_(result_queue), work_func_(std::move(work_func)), queue_timeout_(queue_timeout) {}
  ~ThreadedWorker() override {
    if (is_alive()) join();  // run() uses our members
  }

protected:
  void run() override {
    while (should_continue_running()) {
      WorkItem item;
      try {
        item = work_queue_.get(true, queue_timeout_);
      } catch (const procpool::Empty&) {
        continue;  // the seed logs "queue is empty or get() timed out"
      }
      try {
        result_queue_.put({item.first, work_func_(item.second)}, true, queue_timeout_);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "Error in ThreadedWorker: %s\n", e.what());
      }
      work_queue_.task_done();  // only for an item actually taken
    }
  }

private:
  // stop_when_work_queue_empty, as the seed's default.
  bool should_continue_running() const { return !work_queue_.empty(); }

  procpool::dummy::JoinableQueue<WorkItem>& work_queue_;
  procpool::dummy::Queue<WorkItem>& result_queue_;
  std::function<std::string(const std::string&)> work_func_;
  std::chrono::milliseconds queue_timeout_;
};

std::vector<std::string> do_threaded_work(const std::vector<std::string>& work_items,
                                          const std::function<std::string(const std::string&)>& work_func,
                                          std::size_t num_threads = 0,
                                          std::chrono::milliseconds per_sync_timeout = std::chrono::seconds(1),
                                          bool preserve_result_ordering = true) {
  if (num_threads == 0) num_threads = work_items.size();
  procpool::dummy::JoinableQueue<WorkItem> work_queue;
  procpool::dummy::Queue<WorkItem> result_queue;
  int index = 0;
  for (const auto& item : work_items) work_queue.put({index++, item});
  std::vector<std::unique_ptr<ThreadedWorker>> workers;
  for (std::size_t i = 0; i < num_threads; ++i) {
    workers.push_back(std::make_unique<ThreadedWorker>(work_queue, result_queue, work_func, per_sync_timeout));
    workers.back()->start();
  }
  work_queue.join();
  for (auto& w : workers) w->join();  // the seed's threads are daemons; here they end once the queue is empty
  std::vector<WorkItem> results;
  while (!result_queue.empty()) results.push_back(result_queue.get(true, per_sync_timeout));
  if (preserve_result_ordering) std::sort(results.begin(), results.end());
  std::vector<std::string> out;
  for (auto& r : results) out.push_back(std::move(r.second));
  return out;
}

std::string process_url(const std::string& url) {
  // Work of random length, so that results arrive out of order.
  thread_local std::mt19937 rng(std::random_device{}());
  std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 50));
  return url;
}

std::string repr(const std::vector<std::string>& items) {
  std::string s = "[";
  for (std::size_t i = 0; i < items.size(); ++i) s += (i ? ", '" : "'") + items[i] + "'";
  return s + "]";
}
} // namespace

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  const bool ordered = argc < 2 || std::string(argv[1]) != "unordered";
  const std::vector<std::string> urls_to_process = {"http://url1.com", "http://url2.com", "http://site1.com",
                                                    "http://site2.com"};
  const auto result_items = do_threaded_work(urls_to_process, process_url, 0, std::chrono::seconds(1), ordered);
  std::printf("%s\n", repr(result_items).c_str());
  return 0;
}
