#include "os/demangle.hpp"

#include <cstdlib>
#include <cxxabi.h>
#include <memory>

namespace procpool::os {

std::string demangle(const char* mangled) {
  if (mangled == nullptr) return {};
  int status = 0;
  const std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
  return status == 0 && out ? std::string(out.get()) : std::string(mangled);
}

} // namespace procpool::os
