#pragma once
/// @file procpool.hpp
/// The umbrella header: Python's multiprocessing and threading for C++, everything included.
/// (A translation unit that needs only some of it may include the per-concept headers instead:
/// procpool/log.hpp, which brings spdlog, is the costliest to compile.)
#include "procpool/codec.hpp"
#include "procpool/errors.hpp"
#include "procpool/log.hpp"
#include "procpool/pipe.hpp"
#include "procpool/process.hpp"
#include "procpool/queue.hpp"
#include "procpool/shared_memory.hpp"
#include "procpool/shared/dict.hpp"
#include "procpool/shared/list.hpp"
#include "procpool/shared/string.hpp"
#include "procpool/start_method.hpp"
#include "procpool/sync.hpp"
#include "procpool/threading.hpp"
#include "procpool/async_result.hpp"
#include "procpool/atexit.hpp"
#include "procpool/backend.hpp"
#include "procpool/pool.hpp"
