#pragma once
/// @file procpool.hpp
/// The umbrella header: Python's multiprocessing and threading for C++. Logging is not in it:
/// procpool/log.hpp brings spdlog, which alone costs as much to compile as all the rest; include
/// it where you call procpool::logger() or set_log_level().
#include "procpool/codec.hpp"
#include "procpool/errors.hpp"
#include "procpool/pipe.hpp"
#include "procpool/process.hpp"
#include "procpool/queue.hpp"
#include "procpool/start_method.hpp"
#include "procpool/sync.hpp"
#include "procpool/threading.hpp"
#include "procpool/async_result.hpp"
#include "procpool/atexit.hpp"
#include "procpool/backend.hpp"
#include "procpool/pool.hpp"
