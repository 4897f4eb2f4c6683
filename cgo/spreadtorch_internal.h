// Shared by the shim's translation units; never seen by Go.
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "spreadtorch.h"

struct st_tensor_s {
  at::Tensor t;
};

// A model behind the opaque st_module handle: the module (parameters, buffers, train/eval) and its
// one forward call. Defined here so that every translation unit (models.cpp, vit.cpp) can make one.
struct st_module_s {
  std::shared_ptr<torch::nn::Module> mod;
  std::function<at::Tensor(const at::Tensor&)> forward;
};

namespace st {

char* make_err(const char* msg);
void apply_threads();
at::ScalarType to_scalar_type(int dtype);
int from_scalar_type(at::ScalarType t);
at::Device to_device(int dev_type, int dev_index);
st_tensor wrap(at::Tensor t);
const at::Tensor& get(st_tensor t);
std::vector<at::Tensor> get_list(const st_tensor* ts, int n);

// st_host_copies' counter: every entry point that moves data between host memory and a tensor bumps it.
extern std::atomic<uint64_t> g_host_copies;
inline void count_host_copy() { g_host_copies.fetch_add(1, std::memory_order_relaxed); }

}  // namespace st

// Every entry point that can fail is wrapped in ST_TRY ... ST_END: a C++ exception becomes an error
// string, and c10::Error drops its C++ backtrace, which means nothing to a Go user.
#define ST_TRY          \
  try {                 \
    ::st::apply_threads();
#define ST_END                                              \
  }                                                         \
  catch (const c10::Error& e) {                             \
    return ::st::make_err(e.what_without_backtrace());      \
  }                                                         \
  catch (const std::exception& e) {                         \
    return ::st::make_err(e.what());                        \
  }                                                         \
  catch (...) {                                             \
    return ::st::make_err("unknown C++ exception");         \
  }                                                         \
  return nullptr;
