#!/usr/bin/env bash
# The speed switches (train.speed: amp, channels_last, cudnn_benchmark, foreach) measured on and off
# on this machine, in one run: bench/gputrain's training step (ResNet-18 CIFAR stem + the thanos
# objective, 2 views, data resident, augmentation batched) with every switch off, each alone, and all
# on, interleaved over REPEATS rounds; prints the median images/s of each and its ratio to all-off.
# On a CPU it answers whether a switch should stay off there (speed: auto leaves all four off on
# the CPU); bench/gpu_train.sh does the same on a GPU next to PyTorch.
#
#   bench/fastpath.sh                       # CPU, the CPU-scale model (width 0.125, batch 128)
#   DEVICE=cuda WIDTH=1 BATCH=512 bench/fastpath.sh
#
# Environment: DEVICE (cpu), WIDTH (0.125), BATCH (128), STEPS (10), WARMUP (2), REPEATS (3),
# THREADS (libtorch intra-op threads, 0: its default), SWITCHES (amp channels-last cudnn-benchmark foreach).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
source scripts/runtime-env.sh  # spreadtrain's OpenMP and malloc settings
DEVICE=${DEVICE:-cpu}
WIDTH=${WIDTH:-0.125}
BATCH=${BATCH:-128}
STEPS=${STEPS:-10}
WARMUP=${WARMUP:-2}
REPEATS=${REPEATS:-3}
THREADS=${THREADS:-0}
SWITCHES=${SWITCHES:-amp channels-last cudnn-benchmark foreach}
make -s gputrain
flags=(--device "$DEVICE" --width "$WIDTH" --batch "$BATCH" --steps "$STEPS" --warmup "$WARMUP" --images $((4 * BATCH))
  --threads "$THREADS")
off=(--amp off --channels-last off --cudnn-benchmark off --foreach off)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for r in $(seq "$REPEATS"); do
  bin/gputrain "${flags[@]}" "${off[@]}" >>"$out"
  for sw in $SWITCHES; do bin/gputrain "${flags[@]}" "${off[@]}" "--$sw" on >>"$out"; done
  bin/gputrain "${flags[@]}" --amp on --channels-last on --cudnn-benchmark on --foreach on >>"$out"
  echo "round $r/$REPEATS done" >&2
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault(r["impl"], []).append(r["images_per_s"])
r0 = rows[0]
print(f"device {r0['device']}, libtorch {r0['libtorch']}, width {r0['width']}, batch {r0['batch']}, "
      f"{r0['steps']} timed steps, {len(by['spreadtrain-plain'])} rounds (medians)")
base = statistics.median(by["spreadtrain-plain"])
print(f"{'switches':<36} {'images/s':>9} {'ratio to all off':>17}   runs")
for name, v in by.items():
    m = statistics.median(v)
    print(f"{name:<36} {m:>9.1f} {m / base:>17.3f}   " + " ".join(f"{x:.1f}" for x in v))
PY
