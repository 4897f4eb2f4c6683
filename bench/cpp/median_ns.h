// median_ns: nanoseconds per call of f, the median over `repeats` loops of `iters` calls after a
// warm-up of iters/10 calls. Shared by the op_overhead programs so both time the same way.
#pragma once

#include <algorithm>
#include <chrono>
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
