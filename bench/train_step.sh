#!/usr/bin/env bash
# One CPU training step of a CIFAR ResNet-18 (batch 64, 3x32x32, linear head to 10 classes,
# cross-entropy, backward, SGD momentum 0.9): spreadtrain's Go API (bench/trainstep) vs PyTorch eager
# (bench/train_step.py), in one run. For each thread count in THREADS, ROUNDS rounds alternate the two
# (the order flips every round); each process runs WARMUP untimed steps then STEPS timed ones and
# reports their median. Prints the median over rounds and spreadtrain/pytorch, both as the ratio of
# medians and as the median of per-round ratios. Needs `make shim` and python3-torch/torchvision.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
# libgomp spins actively at barriers unless it manages more threads than CPUs; the Go process can own
# two OpenMP teams (a goroutine may call in from two OS threads), which throttles that spinning and
# skews a comparison on a loaded machine. Both sides therefore run under the same explicit policy;
# OMP_WAIT_POLICY=default leaves it unset. Both sides also get spreadtrain's malloc setting
# (scripts/runtime-env.sh); GLIBC_TUNABLES= (empty) runs both with glibc's defaults.
source scripts/runtime-env.sh
[[ $OMP_WAIT_POLICY == default ]] && unset OMP_WAIT_POLICY
echo "OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset} GLIBC_TUNABLES=${GLIBC_TUNABLES:-unset}" >&2
ROUNDS=${ROUNDS:-3} THREADS=${THREADS:-"1 2"} WARMUP=${WARMUP:-1} STEPS=${STEPS:-5} BATCH=${BATCH:-64}
go build -o build/trainstep ./bench/trainstep
out=$(mktemp)
go_run() { ./build/trainstep -threads "$1" -batch "$BATCH" -warmup "$WARMUP" -steps "$STEPS" -round "$2"; }
py_run() { /usr/bin/python3 bench/train_step.py --threads "$1" --batch "$BATCH" --warmup "$WARMUP" --steps "$STEPS" --round "$2"; }
for t in $THREADS; do
  for r in $(seq "$ROUNDS"); do
    if (( r % 2 )); then go_run "$t" "$r"; py_run "$t" "$r"; else py_run "$t" "$r"; go_run "$t" "$r"; fi
  done
done | tee "$out"
/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys
from collections import defaultdict
rows = [json.loads(l) for l in open(sys.argv[1])]
for key, what in (("ms", "wall-clock ms per step"), ("cpu_ms", "process CPU ms per step (user+sys, all threads)")):
    ms = defaultdict(dict)
    for r in rows:
        ms[(r["impl"], r["threads"])][r["round"]] = r[key]
    print(f"\n{what}: median over rounds of each process's median step")
    print(f"{'threads':>7} {'spreadtrain':>12} {'pytorch':>9} {'ratio of medians':>17} {'median per-round ratio':>23}")
    for t in sorted({r["threads"] for r in rows}):
        st, pt = ms[("spreadtrain", t)], ms[("pytorch", t)]
        rounds = sorted(set(st) & set(pt))
        mst, mpt = statistics.median(st.values()), statistics.median(pt.values())
        rr = statistics.median(st[k] / pt[k] for k in rounds)
        print(f"{t:>7} {mst:>12.0f} {mpt:>9.0f} {mst / mpt:>17.2f} {rr:>23.2f}")
        print(f"{'':>7} rounds: spreadtrain {[round(st[k]) for k in rounds]}  pytorch {[round(pt[k]) for k in rounds]}")
PY
