// Must not compile: a shared::Dict keyed by double (keys are found by their bytes: 0.0 and -0.0
// would be two keys, NaN one). With -DCONTROL, integer and string keys compile.
#include <cstdint>
#include <string>

#include <procpool/shared/dict.hpp>

int main() {
#ifdef CONTROL
  procpool::shared::Dict<std::int64_t, double> by_number;
  procpool::shared::Dict<std::string, double> by_name;
  return static_cast<int>(by_number.size() + by_name.size());
#else
  procpool::shared::Dict<double, int> by_float;
  return static_cast<int>(by_float.size());
#endif
}
