"""Times L_spread forward + backward (alpha 0.5, V = 2, D = 128, float32, 10 classes) with the PyTorch
reference (tools/reference/losses.py, vectorised) at one size; prints one JSON line like
bench/losses/main.go's: medians of the repeats (wall and process CPU time) and the resident memory
before the first loss. bench/losses.sh runs it in its own process and reads the peak RSS."""
import argparse
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools", "reference"))
import losses  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--m", type=int, default=4096, help="anchors M = samples x 2 views")
p.add_argument("--repeats", type=int, default=3)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--device", default="cpu")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)


def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


base = rss_mib()
n = a.m // 2
times, cpu = [], []
for r in range(a.repeats + 1):
    z = torch.randn(n, 2, 128, device=a.device, requires_grad=True)
    y = torch.randint(0, 10, (n,), device=a.device)
    t, c = time.perf_counter(), cpu_s()
    loss = losses.spread(z, y, 0.5, 0.5)
    loss.backward()
    z.grad.sum().item()
    if r > 0:  # the first run warms up
        times.append((time.perf_counter() - t) * 1e3)
        cpu.append((cpu_s() - c) * 1e3)
    del loss, z
med = lambda v: sorted(v)[len(v) // 2]
out = {"impl": "pytorch", "device": a.device, "m": a.m, "ms": med(times), "cpu_ms": med(cpu), "times_ms": times,
       "base_rss_mib": base}
if a.device.startswith("cuda"):
    out["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
print(json.dumps(out), flush=True)
