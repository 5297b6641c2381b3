#pragma once
/// @file os/demangle.hpp
/// Readable C++ type names.
#include <string>

namespace procpool::os {

/// The demangled form of a mangled name (`typeid(x).name()`), or the name itself when it cannot
/// be demangled. Thread-safe.
[[nodiscard]] std::string demangle(const char* mangled);

} // namespace procpool::os
