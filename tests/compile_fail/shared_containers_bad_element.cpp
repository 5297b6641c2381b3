// Must not compile: a shared::List of std::unique_ptr (a heap address means nothing in another
// process). With -DCONTROL, the same list of a plain value and a std::string one compile.
#include <memory>
#include <string>

#include <procpool/shared/list.hpp>

int main() {
#ifdef CONTROL
  procpool::shared::List<int> numbers;
  procpool::shared::List<std::string> texts;
  return static_cast<int>(numbers.size() + texts.size());
#else
  procpool::shared::List<std::unique_ptr<int>> pointers;
  return static_cast<int>(pointers.size());
#endif
}
