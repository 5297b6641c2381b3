#include "broker/connection.hpp"

#include "broker/config_error.hpp"

#include <hiredis/hiredis.h>

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <utility>

#include <poll.h>
#include <sys/time.h>

namespace procpool::broker {
namespace {

timeval to_timeval(double seconds) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(seconds);
  tv.tv_usec = static_cast<suseconds_t>((seconds - std::floor(seconds)) * 1e6);
  return tv;
}

} // namespace

void ReplyFree::operator()(redisReply* reply) const {
  if (reply != nullptr) freeReplyObject(reply);
}

Connection::Connection(BrokerUrl url, double timeout_seconds) : url_(std::move(url)), timeout_seconds_(timeout_seconds) {}

Connection::~Connection() { disconnect(); }

void Connection::disconnect() {
  if (ctx_ != nullptr) redisFree(ctx_);
  ctx_ = nullptr;
  sha_.clear();  // a restarted server has forgotten the scripts; NOSCRIPT would say so anyway
}

void Connection::connect() {
  disconnect();
  const timeval tv = to_timeval(timeout_seconds_);
  redisContext* ctx = url_.unix_socket ? redisConnectUnixWithTimeout(url_.path.c_str(), tv)
                                       : redisConnectWithTimeout(url_.host.c_str(), url_.port, tv);
  if (ctx == nullptr) throw BrokerDown("out of memory");
  if (ctx->err != 0) {
    std::string why = ctx->errstr;
    redisFree(ctx);
    throw BrokerDown(why);
  }
  redisSetTimeout(ctx, tv);
  if (!url_.unix_socket) redisEnableKeepAlive(ctx);
  ctx_ = ctx;
  if (url_.password) {
    std::vector<std::string> auth{"AUTH"};
    if (!url_.user.empty()) auth.push_back(url_.user);
    auth.push_back(*url_.password);
    const Reply r = command(auth);
    if (r->type == REDIS_REPLY_ERROR) {
      const std::string why = r->str;
      disconnect();
      throw ConfigError(fmt::format("{} refused the credentials: {}", url_.redacted(), why));
    }
  }
  if (url_.db != 0) {
    const Reply r = command({"SELECT", std::to_string(url_.db)});
    if (r->type == REDIS_REPLY_ERROR) {
      const std::string why = r->str;
      disconnect();
      throw ConfigError(fmt::format("{}: {}", url_.redacted(), why));
    }
  }
}

void Connection::set_timeout(double seconds) {
  timeout_seconds_ = seconds;
  if (ctx_ != nullptr) redisSetTimeout(ctx_, to_timeval(seconds));
}

Reply Connection::command(const std::vector<std::string>& args) {
  if (ctx_ == nullptr) connect();
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  auto* reply = static_cast<redisReply*>(
      redisCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lengths.data()));
  if (reply == nullptr) {
    std::string why = ctx_->err == REDIS_ERR_IO && ctx_->errstr[0] == '\0' ? std::strerror(errno) : ctx_->errstr;
    if (why.find("Resource temporarily unavailable") != std::string::npos) why = "no reply (timed out)";
    disconnect();
    throw BrokerDown(why);
  }
  return Reply(reply);
}

Reply Connection::call(const std::vector<std::string>& args) {
  Reply r = command(args);
  if (r->type == REDIS_REPLY_ERROR) throw ReplyError(r->str);
  return r;
}

Reply Connection::eval(const Script& script, const std::string& prefix, const std::vector<std::string>& args) {
  for (int attempt = 0;; ++attempt) {
    auto found = sha_.find(&script);
    if (found == sha_.end()) {
      const Reply loaded = call({"SCRIPT", "LOAD", script.source});
      found = sha_.emplace(&script, reply_text(loaded.get())).first;
    }
    std::vector<std::string> argv{"EVALSHA", found->second, "1", prefix};
    argv.insert(argv.end(), args.begin(), args.end());
    Reply r = command(argv);
    if (r->type == REDIS_REPLY_ERROR) {
      if (std::strncmp(r->str, "NOSCRIPT", 8) == 0 && attempt == 0) {  // the server restarted or flushed
        sha_.erase(found);
        continue;
      }
      throw ReplyError(fmt::format("{}: {}", script.name, r->str));
    }
    return r;
  }
}

const std::string& Connection::sha(const Script& script) {
  auto found = sha_.find(&script);
  if (found == sha_.end()) {
    const Reply loaded = call({"SCRIPT", "LOAD", script.source});
    found = sha_.emplace(&script, reply_text(loaded.get())).first;
  }
  return found->second;
}

std::vector<Reply> Connection::eval_pipelined(const Script& script, const std::string& prefix,
                                              const std::vector<std::vector<std::string>>& calls) {
  std::vector<ScriptCall> each;
  each.reserve(calls.size());
  for (const auto& args : calls) each.emplace_back(&script, args);
  return eval_pipelined(prefix, each);
}

std::vector<Reply> Connection::eval_pipelined(const std::string& prefix, const std::vector<ScriptCall>& calls) {
  std::vector<std::string> digests;  // sha() connects, and loads each script once
  digests.reserve(calls.size());
  for (const auto& [script, args] : calls) digests.push_back(sha(*script));
  for (std::size_t i = 0; i < calls.size(); ++i) {
    std::vector<const char*> argv{"EVALSHA", digests[i].c_str(), "1", prefix.c_str()};
    std::vector<std::size_t> lengths{7, digests[i].size(), 1, prefix.size()};
    for (const auto& a : calls[i].second) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lengths.data());
  }
  std::vector<Reply> replies;
  std::vector<std::size_t> not_run;
  for (std::size_t i = 0; i < calls.size(); ++i) {
    void* reply = nullptr;
    if (redisGetReply(ctx_, &reply) != REDIS_OK || reply == nullptr) {
      const std::string why = ctx_->errstr[0] != '\0' ? ctx_->errstr : "connection lost";
      disconnect();
      throw BrokerDown(why);
    }
    replies.emplace_back(static_cast<redisReply*>(reply));
    if (replies.back()->type == REDIS_REPLY_ERROR && std::strncmp(replies.back()->str, "NOSCRIPT", 8) == 0)
      not_run.push_back(i);
  }
  // Calls that did not run (the server lost its scripts): alone now, in order, each script loaded again.
  for (const std::size_t i : not_run) sha_.erase(calls[i].first);
  for (const std::size_t i : not_run) replies[i] = eval(*calls[i].first, prefix, calls[i].second);
  return replies;
}

Reply Connection::next_pushed(int timeout_ms) {
  if (ctx_ == nullptr) throw BrokerDown("not connected");
  void* reply = nullptr;
  // A message already read along with an earlier one waits in hiredis' buffer: no I/O for it.
  if (redisGetReplyFromReader(ctx_, &reply) == REDIS_OK && reply != nullptr) return Reply(static_cast<redisReply*>(reply));
  pollfd pfd{ctx_->fd, POLLIN, 0};
  const int ready = ::poll(&pfd, 1, timeout_ms);
  if (ready == 0 || (ready < 0 && errno == EINTR)) return nullptr;
  if (redisBufferRead(ctx_) != REDIS_OK || redisGetReplyFromReader(ctx_, &reply) != REDIS_OK) {
    const std::string why = ctx_->errstr[0] != '\0' ? ctx_->errstr : "connection lost";
    disconnect();
    throw BrokerDown(why);
  }
  return Reply(static_cast<redisReply*>(reply));
}

std::string reply_text(const redisReply* reply) {
  if (reply == nullptr) return {};
  switch (reply->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR: return std::string(reply->str, reply->len);
    case REDIS_REPLY_INTEGER: return std::to_string(reply->integer);
    default: return {};
  }
}

long long reply_integer(const redisReply* reply) {
  if (reply == nullptr) return 0;
  if (reply->type == REDIS_REPLY_INTEGER) return reply->integer;
  if (reply->type == REDIS_REPLY_STRING) return std::strtoll(reply->str, nullptr, 10);
  return 0;
}

} // namespace procpool::broker
