#pragma once
/// @file sync.hpp
/// Synchronisation and shared state, as Python's multiprocessing and threading have them:
/// Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event, Barrier (process backend in
/// `procpool::`, thread backend in `procpool::dummy::` and `procpool::threading::`), and
/// Value, Array, RawValue, RawArray. See the README (Synchronisation and shared memory).
/// Generic code over both backends: procpool/backend.hpp (`procpool::Processes::Lock`...).
#include "procpool/backend.hpp"
#include "procpool/sync/array.hpp"
#include "procpool/sync/barrier.hpp"
#include "procpool/sync/condition.hpp"
#include "procpool/sync/event.hpp"
#include "procpool/sync/lock.hpp"
#include "procpool/sync/rlock.hpp"
#include "procpool/sync/semaphore.hpp"
#include "procpool/sync/value.hpp"

namespace procpool::threading {
// The threading module's primitives are the thread-backend ones.
using Lock = Threads::Lock;
using RLock = Threads::RLock;
using Semaphore = Threads::Semaphore;
using BoundedSemaphore = Threads::BoundedSemaphore;
using Condition = Threads::Condition;
using Event = Threads::Event;
using Barrier = Threads::Barrier;
} // namespace procpool::threading
