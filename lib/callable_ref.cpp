#include "procpool/detail/callable_ref.hpp"

#include <link.h>

#include "procpool/errors.hpp"

namespace procpool::detail {
namespace {

struct Search {
  std::uintptr_t address = 0;
  const CodeRef* wanted = nullptr;
  CodeRef found;
  std::uintptr_t base = 0;
  bool hit = false;
};

bool object_contains(const dl_phdr_info* info, std::uintptr_t address) {
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    const std::uintptr_t start = info->dlpi_addr + ph.p_vaddr;
    if (address >= start && address < start + ph.p_memsz) return true;
  }
  return false;
}

int find_containing(dl_phdr_info* info, size_t, void* data) {
  auto* s = static_cast<Search*>(data);
  if (!object_contains(info, s->address)) return 0;
  s->found.object = info->dlpi_name != nullptr ? info->dlpi_name : "";
  s->found.offset = s->address - info->dlpi_addr;
  s->hit = true;
  return 1;
}

int find_named(dl_phdr_info* info, size_t, void* data) {
  auto* s = static_cast<Search*>(data);
  const std::string name = info->dlpi_name != nullptr ? info->dlpi_name : "";
  if (name != s->wanted->object) return 0;
  s->base = info->dlpi_addr;
  s->hit = true;
  return 1;  // the first match: the main program is listed first
}

} // namespace

CodeRef code_ref_of(const void* address) {
  Search s;
  s.address = reinterpret_cast<std::uintptr_t>(address);
  dl_iterate_phdr(find_containing, &s);
  if (!s.hit) throw ProcessError("procpool: the target function is not in any loaded object; pass a function or a captureless lambda");
  return s.found;
}

const void* resolve_code_ref(const CodeRef& ref) {
  Search s;
  s.wanted = &ref;
  dl_iterate_phdr(find_named, &s);
  if (!s.hit)
    throw ProcessError("procpool: the child cannot find '" + (ref.object.empty() ? std::string("<main program>") : ref.object) +
                       "', which holds the target function; spawn and forkserver need the same binary and libraries");
  return reinterpret_cast<const void*>(s.base + ref.offset);
}

} // namespace procpool::detail
