"""Op-call overhead of PyTorch eager: add of two 1-element float32 tensors and a 0-d item read.

Prints one JSON line per op: {"impl":"pytorch","op":...,"ns":median over repeats}. Same loop shape as
bench/cpp/op_overhead.cpp and pkg/torch's BenchmarkSmallOp; run all three through bench/op_overhead.sh.
"""
import argparse
import json
import time

import torch


def median_ns(f, iters, repeats):
    for _ in range(iters // 10):
        f()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for _ in range(iters):
            f()
        ts.append((time.perf_counter_ns() - t0) / iters)
    ts.sort()
    return ts[len(ts) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=200000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    a, b = torch.ones(1), torch.ones(1)
    s = torch.ones(())
    add = median_ns(lambda: a + b, args.iters, args.repeats)
    item = median_ns(lambda: s.item(), args.iters, args.repeats)
    # the loop and lambda call themselves, to subtract if wanted
    empty = median_ns(lambda: None, args.iters, args.repeats)
    for op, ns in (("add", add), ("item", item), ("empty-loop", empty)):
        print(json.dumps({"impl": "pytorch", "op": op, "ns": round(ns, 1)}))


if __name__ == "__main__":
    main()
