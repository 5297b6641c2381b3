#pragma once
/// @file threading.hpp
/// The threading module (Python's threading): Thread, Timer, local, current_thread,
/// main_thread, enumerate, active_count. Namespace procpool::threading.
#include "procpool/threading/local.hpp"
#include "procpool/threading/thread.hpp"
#include "procpool/threading/timer.hpp"
