// `procpool status`: one read-only script's snapshot of a queue, as text or one JSON object.
#include "broker/broker.hpp"
#include "broker/connection.hpp"
#include "broker/scripts.hpp"

#include <hiredis/hiredis.h>

#include <fmt/format.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace procpool::cli::broker {
namespace {

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const unsigned char c : s) {
    if (c == '"' || c == '\\') { out += '\\'; out += static_cast<char>(c); }
    else if (c < 0x20) out += fmt::format("\\u{:04x}", c);
    else out += static_cast<char>(c);
  }
  return out + "\"";
}

std::string age(long long ms) {
  if (ms < 0) ms = 0;
  if (ms < 10'000) return fmt::format("{:.1f}s", static_cast<double>(ms) / 1000);
  if (ms < 3'600'000) return fmt::format("{}m{:02}s", ms / 60'000, ms / 1000 % 60);
  return fmt::format("{}h{:02}m", ms / 3'600'000, ms / 60'000 % 60);
}

struct Snapshot {
  long long now = 0, ready = 0, oldest = 0;
  long long stats[6] = {};
  struct Worker {
    std::string wid, host, pid, current;
    long long deadline = 0, slots = 0, busy = 0, beat = 0, done = 0, failed = 0, stale = 0;
  };
  std::vector<Worker> workers;
  struct Run {
    std::string id, state, submitter;
    long long enq = 0, done = 0, failed = 0, running = 0, lost = 0, cancelled = 0, created = 0, seen = 0;
  };
  std::vector<Run> runs;
};

Snapshot read_snapshot(Connection& conn, const std::string& prefix) {
  const Reply r = conn.eval(kStatus, prefix, {});
  Snapshot s;
  std::size_t i = 0;
  auto next = [&]() -> const redisReply* { return i < r->elements ? r->element[i++] : nullptr; };
  auto num = [&] { return reply_integer(next()); };
  auto text = [&] { return reply_text(next()); };
  s.now = num();
  s.ready = num();
  s.oldest = num();
  for (long long& v : s.stats) v = num();
  const long long workers = num();
  for (long long w = 0; w < workers; ++w) {
    Snapshot::Worker x;
    x.wid = text();
    x.deadline = num();
    x.host = text();
    x.pid = text();
    x.slots = num();
    x.busy = num();
    x.beat = num();
    x.done = num();
    x.failed = num();
    x.stale = num();
    x.current = text();
    s.workers.push_back(std::move(x));
  }
  const long long runs = num();
  for (long long k = 0; k < runs; ++k) {
    Snapshot::Run x;
    x.id = text();
    x.state = text();
    x.enq = num();
    x.done = num();
    x.failed = num();
    x.running = num();
    x.lost = num();
    x.cancelled = num();
    x.created = num();
    x.submitter = text();
    x.seen = num();
    s.runs.push_back(std::move(x));
  }
  return s;
}

/// "jid@t_claim ..." as (seq, age) pairs.
std::vector<std::pair<std::string, long long>> current_jobs(const std::string& text, long long now) {
  std::vector<std::pair<std::string, long long>> jobs;
  std::istringstream in(text);
  std::string word;
  while (in >> word) {
    const auto at = word.find('@');
    const std::string jid = word.substr(0, at);
    const long long claimed = at == std::string::npos ? 0 : std::atoll(word.c_str() + at + 1);
    jobs.emplace_back(jid, claimed > 0 ? now - claimed : 0);
  }
  return jobs;
}

std::string eta(const Snapshot::Run& r, long long now) {
  const long long left = r.enq - r.done - r.cancelled;
  if (r.done == 0 || left <= 0) return "-";
  const double per_job = static_cast<double>(now - r.created) / static_cast<double>(r.done);
  return age(static_cast<long long>(per_job * static_cast<double>(left)));
}

/// `what`: "queue 'Q'" for the jobs of `procpool run`, "cluster pools of queue 'Q'" for cluster::Pool tasks.
std::string render_text(const Snapshot& s, const std::string& what) {
  std::string out = fmt::format("{}: {} ready{}\n", what, s.ready,
                                s.oldest > 0 ? fmt::format(", oldest waiting {}", age(s.now - s.oldest)) : "");
  out += fmt::format("  claimed {}  done {}  failed {}  requeued after a crash {}  lost {}  stale completions refused {}\n",
                     s.stats[0], s.stats[1], s.stats[2], s.stats[3], s.stats[4], s.stats[5]);
  out += fmt::format("workers: {}\n", s.workers.size());
  for (const auto& w : s.workers) {
    out += fmt::format("  {} pid {}: {}/{} busy, heartbeat {} ago{}, done {} failed {} stale {}\n", w.host, w.pid, w.busy,
                       w.slots, age(s.now - w.beat), s.now > w.deadline ? " (lease expired)" : "", w.done, w.failed,
                       w.stale);
    for (const auto& [jid, a] : current_jobs(w.current, s.now)) out += fmt::format("    job {} running {}\n", jid, age(a));
  }
  out += fmt::format("runs: {}\n", s.runs.size());
  for (const auto& r : s.runs) {
    const long long queued = std::max(0LL, r.enq - r.done - r.cancelled - r.running);
    out += fmt::format("  {} {}: done {} failed {} running {} queued {} lost {} cancelled {}, ETA {}, submitter {} seen {} ago\n",
                       r.id, r.state, r.done, r.failed, r.running, queued, r.lost, r.cancelled, eta(r, s.now),
                       r.submitter, age(s.now - r.seen));
  }
  return out;
}

/// The snapshot's fields as one JSON object's members (without braces).
std::string json_members(const Snapshot& s) {
  std::string out = fmt::format(R"("time_ms":{},"ready":{},"oldest_age_ms":{},)", s.now, s.ready,
                                s.oldest > 0 ? s.now - s.oldest : 0);
  out += fmt::format(R"("stats":{{"claimed":{},"done":{},"failed":{},"requeued":{},"lost":{},"stale":{}}},"workers":[)",
                     s.stats[0], s.stats[1], s.stats[2], s.stats[3], s.stats[4], s.stats[5]);
  for (std::size_t i = 0; i < s.workers.size(); ++i) {
    const auto& w = s.workers[i];
    out += fmt::format(R"({}{{"id":{},"host":{},"pid":{},"slots":{},"busy":{},"heartbeat_age_ms":{},"lease_left_ms":{},"done":{},"failed":{},"stale":{},"jobs":[)",
                       i ? "," : "", json_string(w.wid), json_string(w.host), w.pid.empty() ? "0" : w.pid, w.slots, w.busy,
                       s.now - w.beat, w.deadline - s.now, w.done, w.failed, w.stale);
    const auto jobs = current_jobs(w.current, s.now);
    for (std::size_t k = 0; k < jobs.size(); ++k)
      out += fmt::format(R"({}{{"job":{},"age_ms":{}}})", k ? "," : "", json_string(jobs[k].first), jobs[k].second);
    out += "]}";
  }
  out += "],\"runs\":[";
  for (std::size_t i = 0; i < s.runs.size(); ++i) {
    const auto& r = s.runs[i];
    const long long queued = std::max(0LL, r.enq - r.done - r.cancelled - r.running);
    out += fmt::format(
        R"({}{{"id":{},"state":{},"enqueued":{},"done":{},"failed":{},"running":{},"queued":{},"lost":{},"cancelled":{},"submitter":{},"seen_age_ms":{}}})",
        i ? "," : "", json_string(r.id), json_string(r.state), r.enq, r.done, r.failed, r.running, queued, r.lost,
        r.cancelled, json_string(r.submitter), s.now - r.seen);
  }
  return out + "]";
}

/// The queue's jobs, and its cluster pools' tasks and workers under "pool".
std::string render_json(const Snapshot& jobs, const Snapshot& pools, const std::string& queue) {
  return fmt::format(R"({{"queue":{},{},"pool":{{{}}}}})", json_string(queue), json_members(jobs), json_members(pools)) + "\n";
}

bool has_pools(const Snapshot& pools) { return pools.ready > 0 || !pools.workers.empty() || !pools.runs.empty(); }

} // namespace

int show_status(const StatusOptions& options) {
  const BrokerUrl url = checked_url(options.url, options.insecure);
  check_queue_name(options.queue);
  Connection conn(url, 5.0);
  try {
    conn.connect();
  } catch (const BrokerDown& e) {
    throw UsageError(fmt::format("cannot connect to {}: {}", url.redacted(), e.what()));
  }
  for (;;) {
    Snapshot s, pools;
    try {
      s = read_snapshot(conn, key_prefix(options.queue));
      pools = read_snapshot(conn, pool_key_prefix(options.queue));
    } catch (const BrokerDown& e) {
      throw UsageError(fmt::format("broker {} unreachable: {}", url.redacted(), e.what()));
    }
    std::string text;
    if (options.json) {
      text = render_json(s, pools, options.queue);
    } else {
      text = render_text(s, fmt::format("queue '{}'", options.queue));
      if (has_pools(pools)) text += render_text(pools, fmt::format("cluster pools of queue '{}'", options.queue));
    }
    if (options.watch > 0 && !options.json) std::cout << "\x1b[H\x1b[2J";
    std::cout << text << std::flush;
    if (options.watch <= 0) return 0;
    std::this_thread::sleep_for(std::chrono::duration<double>(options.watch));
  }
}

} // namespace procpool::cli::broker
