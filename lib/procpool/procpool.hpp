#pragma once
/// @file procpool.hpp
/// The umbrella header: Python's multiprocessing and threading for C++.
#include "procpool/codec.hpp"
#include "procpool/errors.hpp"
#include "procpool/log.hpp"
#include "procpool/process.hpp"
#include "procpool/start_method.hpp"
#include "procpool/sync.hpp"
#include "procpool/threading.hpp"
