#include "broker/url.hpp"

#include "broker/config_error.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <iostream>

#include <arpa/inet.h>

namespace procpool::broker {
namespace {

int parse_port_or_db(const std::string& text, const std::string& url, const char* what, int max) {
  if (text.empty() || text.size() > 9 || !std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); }))
    throw ConfigError(fmt::format("--broker: '{}': the {} must be a number", url, what));
  const int value = std::stoi(text);
  if (value > max) throw ConfigError(fmt::format("--broker: '{}': the {} must be at most {}", url, what, max));
  return value;
}

/// %XX escapes in the user and password (a password may hold '@' or ':').
std::string percent_decode(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() &&
        std::isxdigit(static_cast<unsigned char>(text[i + 1])) && std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

} // namespace

BrokerUrl parse_broker_url(const std::string& text, const char* env_password) {
  BrokerUrl url;
  std::string rest;
  if (text.rfind("redis://", 0) == 0) rest = text.substr(8);
  else if (text.rfind("redis+unix://", 0) == 0) { url.unix_socket = true; rest = text.substr(13); }
  else throw ConfigError(fmt::format("--broker: '{}' is not a redis:// or redis+unix:// URL", text));

  // Credentials end at the last '@' before the path: a password may hold '@' only percent-encoded,
  // but be lenient with a raw one.
  const std::size_t path_start = url.unix_socket ? rest.find("@/") : rest.find('/');
  const std::size_t at = rest.rfind('@', path_start == std::string::npos ? std::string::npos : path_start);
  if (at != std::string::npos) {
    const std::string credentials = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const std::size_t colon = credentials.find(':');
    url.user = percent_decode(credentials.substr(0, colon));
    if (colon != std::string::npos) {
      url.password = percent_decode(credentials.substr(colon + 1));
      url.password_in_url = true;
    }
  }
  if (url.unix_socket) {
    const std::size_t query = rest.find('?');
    url.path = rest.substr(0, query);
    if (url.path.empty() || url.path.front() != '/')
      throw ConfigError(fmt::format("--broker: '{}': redis+unix:// needs an absolute socket path", text));
    if (query != std::string::npos) {
      const std::string q = rest.substr(query + 1);
      if (q.rfind("db=", 0) != 0) throw ConfigError(fmt::format("--broker: '{}': the only query is ?db=N", text));
      url.db = parse_port_or_db(q.substr(3), text, "database number", 1'000'000);
    }
  } else {
    const std::size_t slash = rest.find('/');
    std::string hostport = rest.substr(0, slash);
    if (slash != std::string::npos && slash + 1 < rest.size())
      url.db = parse_port_or_db(rest.substr(slash + 1), text, "database number", 1'000'000);
    if (!hostport.empty() && hostport.front() == '[') {  // [::1]:6379
      const std::size_t close = hostport.find(']');
      if (close == std::string::npos) throw ConfigError(fmt::format("--broker: '{}': unclosed [", text));
      url.host = hostport.substr(1, close - 1);
      hostport = hostport.substr(close + 1);
      if (!hostport.empty()) {
        if (hostport.front() != ':') throw ConfigError(fmt::format("--broker: '{}': expected :PORT after ]", text));
        url.port = parse_port_or_db(hostport.substr(1), text, "port", 65535);
      }
    } else {
      const std::size_t colon = hostport.find(':');
      url.host = hostport.substr(0, colon);
      if (colon != std::string::npos) url.port = parse_port_or_db(hostport.substr(colon + 1), text, "port", 65535);
    }
    if (url.host.empty()) throw ConfigError(fmt::format("--broker: '{}' names no host", text));
    if (url.port == 0) throw ConfigError(fmt::format("--broker: '{}': port 0", text));
  }
  if (!url.password && env_password != nullptr && *env_password != '\0') url.password = env_password;
  return url;
}

std::string BrokerUrl::without_credentials() const {
  if (unix_socket) return db == 0 ? fmt::format("redis+unix://{}", path) : fmt::format("redis+unix://{}?db={}", path, db);
  const bool v6 = host.find(':') != std::string::npos;
  return fmt::format("redis://{}{}{}:{}/{}", v6 ? "[" : "", host, v6 ? "]" : "", port, db);
}

std::string BrokerUrl::redacted() const {
  std::string plain = without_credentials();
  if (user.empty() && !password) return plain;
  const std::size_t scheme_end = plain.find("://") + 3;
  const std::string credentials = user + (password ? ":***" : "") + "@";
  return plain.insert(scheme_end, credentials);
}

bool BrokerUrl::loopback() const {
  if (unix_socket) return true;
  if (host == "localhost" || host == "::1") return true;
  in_addr addr{};
  if (::inet_pton(AF_INET, host.c_str(), &addr) == 1) return (ntohl(addr.s_addr) >> 24) == 127;
  return false;
}

void check_broker_security(const BrokerUrl& url, bool insecure) {
  if (!url.password && !url.loopback() && !insecure)
    throw ConfigError(fmt::format(
        "refusing {} without a password: anyone who reaches it can run commands as this user; set "
        "PROCPOOL_REDIS_PASSWORD or pass --insecure-broker",
        url.redacted()));
  if (url.password_in_url)
    std::cerr << "procpool: warning: the broker password in the URL shows in `ps`; set PROCPOOL_REDIS_PASSWORD "
                 "instead\n";
}

void check_queue_name(const std::string& queue) {
  const bool ok = !queue.empty() && queue.size() <= 64 && std::all_of(queue.begin(), queue.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '.' || c == '-';
  });
  if (!ok) throw ConfigError(fmt::format("--queue: '{}': a queue name is 1-64 of A-Z a-z 0-9 _ . -", queue));
}

} // namespace procpool::broker
