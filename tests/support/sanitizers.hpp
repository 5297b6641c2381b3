#pragma once
// Which sanitizer this test binary was built with, for the few cases one cannot run.

namespace testing {

#if defined(__SANITIZE_THREAD__)
/// TSan does not support a child that starts threads after a multithreaded parent forked it
/// (the child exits with code 66): tests of that pattern are skipped under TSan.
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif

#if defined(__SANITIZE_ADDRESS__)
/// GCC 12's ASan allocator is not fork-safe: a child forked while another thread of the parent
/// holds the allocator's lock deadlocks at its first allocation (seen: replacement pool workers
/// stuck in SizeClassAllocator64::GetFromAllocator). glibc's malloc, which real programs use, takes
/// its locks around fork().
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif

} // namespace testing
