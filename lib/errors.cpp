#include "procpool/errors.hpp"

#include <cstring>
#include <typeinfo>

#include "os/demangle.hpp"

namespace procpool {

RemoteError::RemoteError(std::string type_name, std::string message)
    : Error(type_name + ": " + message), type_name_(std::move(type_name)), message_(std::move(message)) {}

namespace detail {

void throw_errno(const std::string& what, int err) {
  throw ProcessError(what + ": " + std::strerror(err));
}

std::string exception_type_name(const std::exception& e) {
  return os::demangle(typeid(e).name());
}

} // namespace detail
} // namespace procpool
