#!/usr/bin/env bash
# L_spread forward + backward on the CPU (alpha 0.5, 2 views, D = 128, float32, 10 classes): spreadtrain's
# dense and blockwise SupCon paths and the PyTorch reference (tools/reference/losses.py), each size and
# implementation in its own process, so that process's peak RSS (from wait4) is that size's peak memory.
# Prints medians of wall and CPU time, peak RSS, and ratios to the dense path and to PyTorch measured in
# the same run. Needs `make shim` and python3-torch.
#   M="1024 2048 4096 8192 16384"   anchors (samples x 2 views)
#   IMPLS="dense blockwise pytorch" DENSE_MAX=8192 (larger M skip dense and PyTorch: memory)
#   REPEATS=3 (timed, after one warm-up) THREADS=1 BLOCK=0 (blockwise rows per block; 0 = default)
#   WHAT=analyze: what `spreadtrain analyze` computes instead (SupCon + cNCE + SimCLR, float64, no
#     gradient; IMPLS defaults to "dense blockwise": PyTorch has no such reference here)
#   DEVICE=cuda: on a GPU (wall time; peak RSS is then host memory only)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
source scripts/runtime-env.sh  # both sides: spreadtrain's OpenMP and malloc settings
bin=$(mktemp -d)/losses
go build -o "$bin" ./bench/losses
/usr/bin/python3 - "$bin" <<'PY'
import json, os, subprocess, sys
bin_ = sys.argv[1]
ms = [int(x) for x in os.environ.get("M", "1024 2048 4096 8192 16384").split()]
what, device = os.environ.get("WHAT", "train"), os.environ.get("DEVICE", "cpu")
impls = os.environ.get("IMPLS", "dense blockwise pytorch" if what == "train" else "dense blockwise").split()
dense_max = int(os.environ.get("DENSE_MAX", "8192"))
rep, thr, block = os.environ.get("REPEATS", "3"), os.environ.get("THREADS", "1"), os.environ.get("BLOCK", "0")
rows = []
for m in ms:
    for impl in impls:
        if impl != "blockwise" and m > dense_max:
            continue
        if impl == "pytorch":
            cmd = ["/usr/bin/python3", "bench/losses.py", "--m", str(m), "--repeats", rep, "--threads", thr,
                   "--device", device]
        else:
            cmd = [bin_, "-m", str(m), "-path", impl, "-repeats", rep, "-threads", thr, "-block", block,
                   "-device", device] + (["-analyze"] if what == "analyze" else [])
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE)
        out = p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
        if status != 0:
            print(f"M={m} {impl}: exit status {status}", flush=True)
            continue
        r = json.loads(out)
        r["impl"], r["peak_rss_mib"] = impl, ru.ru_maxrss / 1024
        print(json.dumps(r), flush=True)
        rows.append(r)
t = {(r["impl"], r["m"]): r for r in rows}
fmt = lambda v, f="{:.0f}": f.format(v) if v is not None else "-"
print(f"\n{what} on {device}: medians of {rep} repeats, {thr} thread(s); ms = wall, cpu = user+sys of the process; "
      "peak = peak RSS (MiB), base = RSS before the first loss, loss = peak - base")
print(f"{'M':>6} {'impl':>10} {'wall ms':>9} {'cpu ms':>9} {'peak MiB':>9} {'base MiB':>9} "
      f"{'loss MiB':>9} {'cpu/dense':>10} {'cpu/pytorch':>12} {'loss/pytorch':>13} {'|value-dense|':>14}")
for m in ms:
    for impl in impls:
        r = t.get((impl, m))
        if r is None:
            continue
        d, p = t.get(("dense", m)), t.get(("pytorch", m))
        own = lambda x: x["peak_rss_mib"] - x["base_rss_mib"]
        print(f"{m:>6} {impl:>10} {r['ms']:>9.0f} {r['cpu_ms']:>9.0f} {r['peak_rss_mib']:>9.0f} {r['base_rss_mib']:>9.0f} "
              f"{own(r):>9.0f} "
              f"{fmt(r['cpu_ms'] / d['cpu_ms'] if d else None, '{:.2f}'):>10} "
              f"{fmt(r['cpu_ms'] / p['cpu_ms'] if p else None, '{:.2f}'):>12} "
              f"{fmt(own(r) / own(p) if p else None, '{:.2f}'):>13} "
              f"{fmt(abs(r['loss'] - d['loss']) if d and 'loss' in r else None, '{:.1e}'):>14}")
PY
