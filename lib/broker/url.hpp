#pragma once
// Broker URLs: redis://[user[:password]@]host[:port][/db] and redis+unix://[user[:password]@]/path.sock[?db=N].
// Parsed here (hiredis 0.14 has no URL parser); printed only redacted, never with the password.
#include "broker/config_error.hpp"

#include <optional>
#include <string>

namespace procpool::broker {

struct BrokerUrl {
  bool unix_socket = false;
  std::string host;  ///< TCP host (an IPv6 literal without its brackets)
  int port = 6379;
  std::string path;  ///< unix socket path
  int db = 0;
  std::string user;
  std::optional<std::string> password;
  bool password_in_url = false;  ///< visible in `ps`: the commands warn

  /// The URL with the password as `***`: the only form procpool prints.
  [[nodiscard]] std::string redacted() const;
  /// The URL without user or password (the joblog's sidecar, the hint to start a worker).
  [[nodiscard]] std::string without_credentials() const;
  /// localhost, 127.0.0.0/8, ::1 or a unix socket: reachable from this host only.
  [[nodiscard]] bool loopback() const;
};

/// Parses `text`; a password missing from the URL comes from `env_password` (PROCPOOL_REDIS_PASSWORD).
/// Throws ConfigError with what is wrong.
BrokerUrl parse_broker_url(const std::string& text, const char* env_password);

/// Refuses a non-loopback broker without a password unless `insecure` (anyone who reaches it can run
/// commands as this user); warns about a password written in the URL. Throws ConfigError.
void check_broker_security(const BrokerUrl& url, bool insecure);

/// Queue names: [A-Za-z0-9_.-]{1,64}. Throws ConfigError.
void check_queue_name(const std::string& queue);

} // namespace procpool::broker
