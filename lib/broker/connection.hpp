#pragma once
// One connection to the broker over hiredis (only calls that hiredis 0.14 and 1.x both have): connect with a
// timeout, AUTH, SELECT, commands as argument vectors, Lua scripts by EVALSHA (loaded again on NOSCRIPT).
// Not thread-safe: each thread of a worker has its own.
#include "broker/url.hpp"

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

struct redisContext;
struct redisReply;

namespace procpool::broker {

/// The broker cannot be reached, or the connection broke: the caller retries (what() is hiredis' reason).
struct BrokerDown : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Redis answered with an error reply (what() is its text).
struct ReplyError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ReplyFree {
  void operator()(redisReply* reply) const;
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

/// A Lua operation of the protocol (scripts.hpp).
struct Script {
  const char* name;
  const char* source;
};

class Connection {
 public:
  /// `timeout_seconds` bounds the connect and every reply (a partitioned broker must not hang a call).
  Connection(BrokerUrl url, double timeout_seconds);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Connects, AUTH, SELECT. Throws BrokerDown (unreachable) or ConfigError (refused credentials).
  void connect();
  [[nodiscard]] bool connected() const { return ctx_ != nullptr; }
  void disconnect();
  /// Connects if needed, sends, waits for the reply. Throws BrokerDown (and disconnects) on an I/O
  /// error or timeout; an error reply is returned as is.
  Reply command(const std::vector<std::string>& args);
  /// command(), but an error reply throws ReplyError.
  Reply call(const std::vector<std::string>& args);
  /// Runs `script` with KEYS[1] = `prefix` (the queue's key prefix) and `args`. Throws ReplyError for an
  /// error the script raised.
  Reply eval(const Script& script, const std::string& prefix, const std::vector<std::string>& args);
  /// Runs `script` once per argument list, pipelined: one round trip for all. Returns the replies in order;
  /// an error reply is returned as is (not thrown) so that the caller sees which call failed.
  std::vector<Reply> eval_pipelined(const Script& script, const std::string& prefix,
                                    const std::vector<std::vector<std::string>>& calls);
  /// eval_pipelined() with a script per call (a worker's finish and claim share one round trip).
  using ScriptCall = std::pair<const Script*, std::vector<std::string>>;
  std::vector<Reply> eval_pipelined(const std::string& prefix, const std::vector<ScriptCall>& calls);
  /// After SUBSCRIBE: the next message the server pushes, waiting at most `timeout_ms`; null when none
  /// came. Throws BrokerDown when the connection broke.
  Reply next_pushed(int timeout_ms);
  /// The reply timeout for the next calls (a blocking BLMOVE needs more than its own block time).
  void set_timeout(double seconds);
  [[nodiscard]] const BrokerUrl& url() const { return url_; }

 private:
  BrokerUrl url_;
  double timeout_seconds_;
  redisContext* ctx_ = nullptr;
  const std::string& sha(const Script& script);
  std::map<const Script*, std::string> sha_;  // SCRIPT LOAD's answer, per server
};

/// Reply helpers: text of a string/status/integer reply; integer of an integer or numeric string reply.
std::string reply_text(const redisReply* reply);
long long reply_integer(const redisReply* reply);

} // namespace procpool::broker
