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

} // namespace testing
