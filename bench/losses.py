"""Times L_spread forward + backward (alpha 0.5, V = 2, D = 128) with the PyTorch reference
(tools/reference/losses.py: vectorised, and the per-anchor loop of typical research code).
Prints one JSON line per (implementation, N): the median of the repeats in milliseconds."""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools", "reference"))
import losses  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--n", default="256,1024,4096")
p.add_argument("--loop-n", default="256,1024", help="sizes for the (slow) per-anchor loop")
p.add_argument("--repeats", type=int, default=5)
p.add_argument("--threads", type=int, default=1)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)


def loop_spread(z, y, tau, alpha):
    return alpha * losses.supcon_loop(z, y, tau) + (1 - alpha) * losses.cnce_loop(z, y, tau)


def timeit(fn, n, repeats):
    times = []
    for r in range(repeats + 1):
        z = torch.randn(n, 2, 128, requires_grad=True)
        y = torch.randint(0, 10, (n,))
        t = time.perf_counter()
        fn(z, y, 0.5, 0.5).backward()
        z.grad.sum().item()
        if r > 0:
            times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return times[len(times) // 2]


for n in [int(s) for s in a.n.split(",")]:
    print(json.dumps({"impl": "pytorch", "n": n, "ms": timeit(losses.spread, n, a.repeats)}), flush=True)
for n in [int(s) for s in a.loop_n.split(",") if s]:
    print(json.dumps({"impl": "pytorch-loop", "n": n, "ms": timeit(loop_spread, n, 1)}), flush=True)
