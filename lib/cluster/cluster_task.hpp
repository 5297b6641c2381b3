#pragma once
// What a cluster pool task is in Redis (the job's `cmd`): the invoker and function named as in a
// fresh image (object, offset, build-id: detail/callable_ref.hpp) and the encoded arguments.
// Workers run only invokers that this program instantiated for a pool (allowed_pool_invoker).
#include "procpool/codec.hpp"
#include "procpool/detail/callable_ref.hpp"

#include <string>

namespace procpool::detail {

struct ClusterTask {
  CodeRef invoker;
  CodeRef function;          ///< meaningful only with has_function
  bool has_function = false;  ///< false: a captureless lambda, rebuilt by the invoker
  std::string payload;

  template <class Archive>
  void serialize(Archive& ar) { ar(invoker, function, has_function, payload); }
};

} // namespace procpool::detail
