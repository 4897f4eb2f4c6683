#!/usr/bin/env bash
# L_spread forward + backward on CPU: spreadtrain vs the PyTorch reference (vectorised) vs the
# per-anchor loop formulation, in one run, one intra-op thread. Needs `make shim` and python3-torch.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
out=$(mktemp)
go run ./bench/losses -n "${N:-256,1024,4096}" -threads 1 | tee "$out"
/usr/bin/python3 bench/losses.py --n "${N:-256,1024,4096}" --loop-n "${LOOP_N:-256,1024}" --threads 1 | tee -a "$out"
/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
t = {(r["impl"], r["n"]): r["ms"] for r in rows}
print(f"\n{'N':>6} {'spreadtrain ms':>15} {'pytorch ms':>11} {'ratio':>6} {'loop ms':>10} {'loop/spreadtrain':>17}")
for n in sorted({r["n"] for r in rows}):
    st, pt, lp = t.get(("spreadtrain", n)), t.get(("pytorch", n)), t.get(("pytorch-loop", n))
    fmt = lambda v: f"{v:.2f}" if v is not None else "-"
    ratio = f"{st / pt:.2f}" if st and pt else "-"
    speed = f"{lp / st:.0f}x" if st and lp else "-"
    print(f"{n:>6} {fmt(st):>15} {fmt(pt):>11} {ratio:>6} {fmt(lp):>10} {speed:>17}")
PY
