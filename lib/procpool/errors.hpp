#pragma once
/// @file errors.hpp
/// The exception hierarchy, rooted in procpool::Error, with Python's names.
#include <stdexcept>
#include <string>

namespace procpool {

/// Root of every exception procpool throws (Python: multiprocessing.ProcessError's role).
class Error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// A process-level failure: a process that cannot be started, joined or signalled.
class ProcessError : public Error {
public:
  using Error::Error;
};

/// A blocking call ran out of time (Python: multiprocessing.TimeoutError).
class TimeoutError : public Error {
public:
  using Error::Error;
};

/// An argument had an invalid value (Python: ValueError), e.g. releasing an unlocked lock
/// or over-releasing a BoundedSemaphore.
class ValueError : public Error {
public:
  using Error::Error;
};

/// An index out of range (Python: IndexError), e.g. Array::at past the end.
class IndexError : public Error {
public:
  using Error::Error;
};

/// An operation on an object in the wrong state (Python: AssertionError / RuntimeError
/// from multiprocessing), e.g. start() twice or join() before start().
class StateError : public Error {
public:
  using Error::Error;
};

/// A named object exists already (Python: FileExistsError), e.g. creating a SharedMemory
/// under a name in use.
class FileExistsError : public Error {
public:
  using Error::Error;
};

/// No object under that name (Python: FileNotFoundError), e.g. attaching to a SharedMemory
/// that was never created, was unlinked, or whose creator has ended.
class FileNotFoundError : public Error {
public:
  using Error::Error;
};

/// A value cannot travel to another process: undecodable bytes or a type mismatch.
class SerializationError : public Error {
public:
  using Error::Error;
};

/// Queue::get on an empty queue without blocking, or timed out (Python: queue.Empty).
class Empty : public Error {
public:
  using Error::Error;
};

/// Queue::put on a full queue without blocking, or timed out (Python: queue.Full).
class Full : public Error {
public:
  using Error::Error;
};

/// A connection whose other end is closed and drained (Python: EOFError).
class EOFError : public Error {
public:
  using Error::Error;
};

/// Connection::send to an end whose peer has closed (Python: BrokenPipeError).
class BrokenPipeError : public Error {
public:
  using Error::Error;
};

/// A Barrier was aborted or broken while waiting (Python: threading.BrokenBarrierError).
class BrokenBarrierError : public Error {
public:
  using Error::Error;
};

/// A pool that can no longer run tasks (Python: concurrent.futures BrokenProcessPool).
class BrokenProcessPool : public ProcessError {
public:
  using ProcessError::ProcessError;
};

/// A pool worker died (signal or exit) while it held a task; names the pid and the cause.
class WorkerLostError : public ProcessError {
public:
  using ProcessError::ProcessError;
};

/// The previous owner of a lock died while holding it. The lock is now held by the caller,
/// who must consider the data it guards possibly inconsistent (robust mutex EOWNERDEAD).
class OwnerDiedError : public Error {
public:
  using Error::Error;
};

/// An exception thrown in another process or thread, carried back with its type name
/// and message (e.g. a task that threw in a Pool worker).
class RemoteError : public Error {
public:
  RemoteError(std::string type_name, std::string message);
  /// The demangled type name of the original exception.
  [[nodiscard]] const std::string& type_name() const noexcept { return type_name_; }
  /// The original exception's what().
  [[nodiscard]] const std::string& message() const noexcept { return message_; }

private:
  std::string type_name_;
  std::string message_;
};

namespace detail {
/// Throws ProcessError with `what` followed by strerror(err).
[[noreturn]] void throw_errno(const std::string& what, int err);
/// The demangled dynamic type name of the exception `e`.
std::string exception_type_name(const std::exception& e);
} // namespace detail

} // namespace procpool
