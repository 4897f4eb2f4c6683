// op_overhead: ns per small op called from C++ directly against libtorch (the floor under any binding).
// Prints one JSON line per op: {"impl":"cpp","op":...,"ns":median over repeats}.
// Usage: op_overhead [iters=200000] [repeats=5]
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>

#include "median_ns.h"

int main(int argc, char** argv) {
  long iters = argc > 1 ? std::atol(argv[1]) : 200000;
  int repeats = argc > 2 ? std::atoi(argv[2]) : 5;
  at::set_num_threads(1);
  at::Tensor a = at::ones({1}, at::kFloat), b = at::ones({1}, at::kFloat);
  at::Tensor s = at::ones({}, at::kFloat);
  volatile double sink = 0;
  double add = median_ns([&] { at::Tensor r = at::add(a, b); }, iters, repeats);
  double item = median_ns([&] { sink = sink + s.item<double>(); }, iters, repeats);
  std::printf("{\"impl\":\"cpp\",\"op\":\"add\",\"ns\":%.1f}\n", add);
  std::printf("{\"impl\":\"cpp\",\"op\":\"item\",\"ns\":%.1f}\n", item);
  return 0;
}
