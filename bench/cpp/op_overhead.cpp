// op_overhead: ns per small op called from C++ directly against libtorch (the floor under any binding).
// Prints one JSON line per op: {"impl":"cpp","op":...,"ns":median over repeats}.
// Usage: op_overhead [iters=200000] [repeats=5]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

template <class F>
static double median_ns(F f, long iters, int repeats) {
  for (long i = 0; i < iters / 10; i++) f();  // warm-up
  std::vector<double> ts;
  for (int r = 0; r < repeats; r++) {
    auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < iters; i++) f();
    auto t1 = std::chrono::steady_clock::now();
    ts.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / iters);
  }
  std::sort(ts.begin(), ts.end());
  return ts[ts.size() / 2];
}

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
