#include "procpool/detail/callable_ref.hpp"

#include <cstring>
#include <mutex>
#include <unordered_set>

#include <elf.h>
#include <link.h>

#include "procpool/errors.hpp"

namespace procpool::detail {
namespace {

struct Search {
  std::uintptr_t address = 0;
  const std::string* wanted = nullptr;
  CodeRef found;
  std::uintptr_t base = 0;
  bool executable = false;  // the address / offset lies in a PF_X PT_LOAD segment
  std::uint64_t offset = 0; // for find_named: the offset to check
  std::string build_id;
  bool hit = false;
};

std::string to_hex(const unsigned char* bytes, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 15]);
  }
  return out;
}

std::size_t align4(std::size_t n) { return (n + 3) & ~std::size_t{3}; }

/// The NT_GNU_BUILD_ID note of a loaded object, read from its mapped PT_NOTE segments.
std::string build_id_of(const dl_phdr_info* info) {
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_NOTE) continue;
    const auto* p = reinterpret_cast<const unsigned char*>(info->dlpi_addr + ph.p_vaddr);
    std::size_t left = ph.p_memsz;
    while (left >= sizeof(ElfW(Nhdr))) {
      ElfW(Nhdr) note;
      std::memcpy(&note, p, sizeof note);
      const std::size_t size = sizeof note + align4(note.n_namesz) + align4(note.n_descsz);
      if (size > left) break;
      const auto* name = p + sizeof note;
      if (note.n_type == NT_GNU_BUILD_ID && note.n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0)
        return to_hex(name + align4(note.n_namesz), note.n_descsz);
      p += size;
      left -= size;
    }
  }
  return {};
}

/// The PT_LOAD segment holding `offset` (relative to the load bias), or nullptr.
const ElfW(Phdr)* load_segment_of(const dl_phdr_info* info, std::uint64_t offset) {
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    if (offset >= ph.p_vaddr && offset < ph.p_vaddr + ph.p_memsz) return &ph;
  }
  return nullptr;
}

std::string name_of(const dl_phdr_info* info) { return info->dlpi_name != nullptr ? info->dlpi_name : ""; }

int find_containing(dl_phdr_info* info, size_t, void* data) {
  auto* s = static_cast<Search*>(data);
  if (s->address < info->dlpi_addr) return 0;
  const std::uint64_t offset = s->address - info->dlpi_addr;
  if (load_segment_of(info, offset) == nullptr) return 0;
  s->found.object = name_of(info);
  s->found.build_id = build_id_of(info);
  s->found.offset = offset;
  s->hit = true;
  return 1;
}

int find_named(dl_phdr_info* info, size_t, void* data) {
  auto* s = static_cast<Search*>(data);
  if (name_of(info) != *s->wanted) return 0;
  s->base = info->dlpi_addr;
  s->build_id = build_id_of(info);
  const ElfW(Phdr)* seg = load_segment_of(info, s->offset);
  s->executable = seg != nullptr && (seg->p_flags & PF_X) != 0;
  s->hit = true;
  return 1;  // the first match: the main program is listed first
}

std::string shown(const std::string& object) { return object.empty() ? std::string("<main program>") : object; }
std::string shown_id(const std::string& id) { return id.empty() ? std::string("<none>") : id; }

ProcessError mismatch(const std::string& object, const std::string& parents, const std::string& ours) {
  return ProcessError("procpool: '" + shown(object) + "' in the child has build-id " + shown_id(ours) +
                      " but the parent's has build-id " + shown_id(parents) +
                      " (replaced on disk since the parent loaded it?); refusing to run its code");
}

int collect(dl_phdr_info* info, size_t, void* data) {
  static_cast<std::vector<LoadedObject>*>(data)->push_back(LoadedObject{name_of(info), build_id_of(info)});
  return 0;
}

} // namespace

CodeRef code_ref_of(const void* address) {
  Search s;
  s.address = reinterpret_cast<std::uintptr_t>(address);
  dl_iterate_phdr(find_containing, &s);
  if (!s.hit) throw ProcessError("procpool: the target function is not in any loaded object; pass a function or a captureless lambda");
  return s.found;
}

std::string loaded_build_id(const std::string& object) {
  Search s;
  s.wanted = &object;
  dl_iterate_phdr(find_named, &s);
  if (!s.hit) throw ProcessError("procpool: no loaded object is named '" + shown(object) + "'");
  return s.build_id;
}

std::vector<LoadedObject> loaded_objects() {
  std::vector<LoadedObject> out;
  dl_iterate_phdr(collect, &out);
  return out;
}

void check_same_objects(const std::vector<LoadedObject>& parents) {
  const std::vector<LoadedObject> ours = loaded_objects();
  for (const LoadedObject& p : parents) {
    for (const LoadedObject& o : ours) {
      if (o.name != p.name) continue;
      if (o.build_id != p.build_id) throw mismatch(p.name, p.build_id, o.build_id);
      break;  // the first of a name, as resolve_code_ref uses
    }
  }
}

const void* resolve_code_ref(const CodeRef& ref) {
  Search s;
  s.wanted = &ref.object;
  s.offset = ref.offset;
  dl_iterate_phdr(find_named, &s);
  if (!s.hit)
    throw ProcessError("procpool: the child cannot find '" + shown(ref.object) +
                       "', which holds the target function; spawn and forkserver need the same binary and libraries");
  // Another build at the same path (a library or program upgraded on disk while the parent
  // ran) has other code at that offset: calling it would run something else.
  if (!ref.build_id.empty() && s.build_id != ref.build_id) throw mismatch(ref.object, ref.build_id, s.build_id);
  if (ref.offset != 0 && !s.executable)
    throw ProcessError("procpool: offset " + std::to_string(ref.offset) + " is not in an executable segment of '" +
                       shown(ref.object) + "'; refusing to call it");
  return reinterpret_cast<const void*>(s.base + ref.offset);
}

namespace {
struct AllowedInvokers {
  std::mutex mutex;
  std::unordered_set<const void*> set;
};
AllowedInvokers& allowed_invokers() {
  static AllowedInvokers* invokers = new AllowedInvokers;  // never destroyed: used until exit
  return *invokers;
}
} // namespace

bool allow_cluster_invoker(const void* invoker) noexcept {
  try {
    AllowedInvokers& a = allowed_invokers();
    std::lock_guard lock(a.mutex);
    a.set.insert(invoker);
  } catch (...) {
    return false;  // out of memory before main(): that entry stays refused
  }
  return true;
}

bool cluster_invoker_allowed(const void* invoker) noexcept {
  AllowedInvokers& a = allowed_invokers();
  std::lock_guard lock(a.mutex);
  return a.set.contains(invoker);
}

} // namespace procpool::detail
