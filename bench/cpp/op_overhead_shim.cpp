// op_overhead_shim: the same small ops as op_overhead.cpp, but through libspreadtorch.so's C ABI (handle
// allocation, error plumbing, apply_threads) called from C++: shim cost without cgo.
// Prints {"impl":"shim-c",...} lines. Usage: op_overhead_shim [iters=200000] [repeats=5]
#include <cstdio>
#include <cstdlib>

#include "median_ns.h"
#include "spreadtorch.h"

static void ok(st_err e) {
  if (e) {
    std::fprintf(stderr, "shim error: %s\n", e);
    std::exit(1);
  }
}

int main(int argc, char** argv) {
  long iters = argc > 1 ? std::atol(argv[1]) : 200000;
  int repeats = argc > 2 ? std::atoi(argv[2]) : 5;
  st_set_num_threads(1);
  int64_t one = 1;
  st_tensor a, b, s;
  ok(st_factory(ST_ONES, &one, 1, 0, ST_FLOAT32, ST_CPU, 0, &a));
  ok(st_factory(ST_ONES, &one, 1, 0, ST_FLOAT32, ST_CPU, 0, &b));
  ok(st_factory(ST_ONES, nullptr, 0, 0, ST_FLOAT32, ST_CPU, 0, &s));
  volatile double sink = 0;
  double add = median_ns([&] {
    st_tensor r;
    ok(st_binary(ST_ADD, a, b, &r));
    st_tensor_free(r);
  }, iters, repeats);
  double item = median_ns([&] {
    double v;
    ok(st_item_double(s, &v));
    sink = sink + v;
  }, iters, repeats);
  std::printf("{\"impl\":\"shim-c\",\"op\":\"add\",\"ns\":%.1f}\n", add);
  std::printf("{\"impl\":\"shim-c\",\"op\":\"item\",\"ns\":%.1f}\n", item);
  return 0;
}
