#pragma once
// A broker setting that cannot work (bad URL, refused credentials, wrong server policy, another
// protocol version): the `procpool` command exits 255 with the message, a cluster Pool throws it.
#include <stdexcept>

namespace procpool::broker {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

} // namespace procpool::broker
