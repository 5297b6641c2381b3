#include "procpool/errors.hpp"

#include <cstring>
#include <cxxabi.h>
#include <memory>
#include <typeinfo>

namespace procpool {

RemoteError::RemoteError(std::string type_name, std::string message)
    : Error(type_name + ": " + message), type_name_(std::move(type_name)), message_(std::move(message)) {}

namespace detail {

void throw_errno(const std::string& what, int err) {
  throw ProcessError(what + ": " + std::strerror(err));
}

std::string exception_type_name(const std::exception& e) {
  const char* mangled = typeid(e).name();
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> demangled(abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
  return status == 0 && demangled ? std::string(demangled.get()) : std::string(mangled);
}

} // namespace detail
} // namespace procpool
