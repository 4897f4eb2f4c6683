#!/usr/bin/env bash
# The effect of spreadtrain's malloc setting (GLIBC_TUNABLES in scripts/runtime-env.sh, which the
# spreadtrain command gives itself at start-up) against glibc's defaults, in one run: the CPU
# ResNet-18 training step at two batch sizes (bench/trainstep, and PyTorch eager bench/train_step.py,
# which gains the same) and `spreadtrain analyze` of random embeddings. ROUNDS rounds alternate the
# two settings (the order flips every round); prints medians over rounds of wall time and peak RSS
# and the ratio tuned / default. Needs `make build` and python3-torch/torchvision.
#   ROUNDS=3 BATCHES="64 256" STEPS=3 THREADS=1 ANALYZE_N=10000 (samples, x 2 views x 64 dims)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
source scripts/runtime-env.sh
tuned=$GLIBC_TUNABLES
ROUNDS=${ROUNDS:-3} BATCHES=${BATCHES:-"64 256"} STEPS=${STEPS:-3} THREADS=${THREADS:-1} ANALYZE_N=${ANALYZE_N:-10000}
go build -o build/trainstep ./bench/trainstep
work=$(mktemp -d)
/usr/bin/python3 - "$work" "$ANALYZE_N" <<'PY'
import sys, numpy as np
r = np.random.default_rng(0)
n = int(sys.argv[2])
np.save(f"{sys.argv[1]}/emb.npy", r.standard_normal((n, 2, 64)).astype(np.float32))
np.save(f"{sys.argv[1]}/labels.npy", r.integers(0, 10, n).astype(np.int64))
PY
# one measurement: setting, workload, command; prints a JSON line with wall seconds and peak RSS
measure() {
  local setting=$1 what=$2; shift 2
  local t=$work/time
  GLIBC_TUNABLES=$([[ $setting == tuned ]] && echo "$tuned") /usr/bin/time -f '%e %M' -o "$t" "$@" >/dev/null
  read -r wall kb <"$t"
  echo "{\"setting\": \"$setting\", \"what\": \"$what\", \"wall_s\": $wall, \"peak_mib\": $((kb / 1024))}"
}
round() {
  local setting=$1 b
  for b in $BATCHES; do
    measure "$setting" "spreadtrain step, batch $b" ./build/trainstep -threads "$THREADS" -batch "$b" -warmup 1 -steps "$STEPS"
    measure "$setting" "pytorch step, batch $b" /usr/bin/python3 bench/train_step.py --threads "$THREADS" --batch "$b" --warmup 1 --steps "$STEPS"
  done
  measure "$setting" "spreadtrain analyze, N $ANALYZE_N" bin/spreadtrain --threads "$THREADS" analyze \
    --embeddings "$work/emb.npy" --labels "$work/labels.npy"
}
for r in $(seq "$ROUNDS"); do
  if (( r % 2 )); then round default; round tuned; else round tuned; round default; fi
done | tee "$work/rows"
/usr/bin/python3 - "$work/rows" "$tuned" <<'PY'
import json, statistics, sys
from collections import defaultdict
rows = [json.loads(l) for l in open(sys.argv[1])]
m = defaultdict(lambda: defaultdict(list))
for r in rows:
    m[r["what"]][r["setting"]].append(r)
med = lambda rs, k: statistics.median(x[k] for x in rs)
print(f"\nwall time and peak RSS of each whole process (a step workload is 1 warm-up + STEPS timed steps), "
      f"medians over rounds")
print(f"tuned: GLIBC_TUNABLES={sys.argv[2]}")
print(f"{'workload':<32} {'default s':>10} {'tuned s':>8} {'tuned/default':>14} {'default MiB':>12} {'tuned MiB':>10}")
for what, s in m.items():
    d, t = s["default"], s["tuned"]
    print(f"{what:<32} {med(d, 'wall_s'):>10.1f} {med(t, 'wall_s'):>8.1f} {med(t, 'wall_s') / med(d, 'wall_s'):>14.2f} "
          f"{med(d, 'peak_mib'):>12.0f} {med(t, 'peak_mib'):>10.0f}")
PY
