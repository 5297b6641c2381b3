#pragma once
/// @file detail/end_tokens.hpp
/// Who still holds each end of a process-backend Pipe, as the kernel sees it.
///
/// Each end E has an OS pipe used for nothing but its hang-up state: every process that holds
/// E open keeps a copy of the pipe's write side (E's *token*). A forked child inherits it, a
/// spawned or forkserver child opens its own copy while attaching, and closing E or dying
/// (SIGKILL included) drops it. Once no copy is left anywhere, the read side reports POLLHUP:
/// the holders of the peer end learn that E is gone (recv: end of file, send: broken pipe),
/// exactly as CPython's Connection learns it from its socket or pipe.
///
/// Spawn hand-off: encode_handoff() keeps duplicates of this process's descriptors open (with
/// the rings they go with) until the child has opened its own copies and said so through a
/// one-byte acknowledgement pipe; a small background thread then closes the duplicates. So
/// the parent may close its end right after Process::start(), as in CPython. Process encodes
/// its arguments only when it starts a spawn or forkserver child (a forked child inherits the
/// ends themselves), so each hand-off has exactly one child to acknowledge it. A hand-off whose
/// child never attaches (a failed spawn, a child killed before it attached) keeps the end open
/// in this process until this process exits.
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace procpool::detail {

class Ring;

/// One process's handle on an end's token and on both ends' hang-up state. Move-only; the
/// destructor is release(). Not thread-safe against its own move, release or destruction.
class EndTokens {
public:
  EndTokens() = default;
  /// The tokens of a new pipe's two ends (a, b), both held by this process.
  static std::pair<EndTokens, EndTokens> create_pair();

  EndTokens(EndTokens&& other) noexcept { swap(other); }
  EndTokens& operator=(EndTokens&& other) noexcept {
    EndTokens tmp(std::move(other));
    swap(tmp);
    return *this;
  }
  EndTokens(const EndTokens&) = delete;
  EndTokens& operator=(const EndTokens&) = delete;
  ~EndTokens() { (void)release(); }

  /// Whether this object holds a token (false after release() or a move, and for threads).
  [[nodiscard]] bool held() const noexcept { return token_ >= 0; }
  /// Whether every process that held the peer end has closed it or died (one poll(2)).
  /// Thread-safe.
  [[nodiscard]] bool peer_gone() const noexcept;
  /// Drops this process's token. Returns true if no process holds this end any more (this
  /// was the last copy). Idempotent (false after the first call).
  bool release() noexcept;

  /// Appends what a spawned child needs to hold this end too (see the file comment); keeps
  /// `rings` mapped and open until the child has attached. Throws ProcessError.
  void encode_handoff(std::string& out, std::vector<std::shared_ptr<Ring>> rings) const;
  /// In the child: takes this process's own copies from the handle at the front of `in`,
  /// acknowledges the hand-off, advances `in`. Throws ProcessError / SerializationError.
  static EndTokens attach_handoff(std::string_view& in);

private:
  EndTokens(int token, int self_watch, int peer_watch) noexcept
      : token_(token), self_watch_(self_watch), peer_watch_(peer_watch) {}
  void swap(EndTokens& other) noexcept {
    std::swap(token_, other.token_);
    std::swap(self_watch_, other.self_watch_);
    std::swap(peer_watch_, other.peer_watch_);
  }

  int token_ = -1;       ///< write side of this end's pipe: this process's hold on the end
  int self_watch_ = -1;  ///< read side of this end's pipe: hangs up when no holder is left
  int peer_watch_ = -1;  ///< read side of the peer end's pipe
};

} // namespace procpool::detail
