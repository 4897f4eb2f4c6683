#!/usr/bin/env bash
# One CPU training step of the whole Thanos model: ResNet-18 (CIFAR stem, width 1) + projection head
# + the class-conditional decoder, SupCon + cNCE + reconstruction losses, 2 views, AdamW.
# spreadtrain's trainer step (bench/gputrain, every speed switch off) against the same model in
# PyTorch eager (bench/gpu_train.py --impl eager), in one run: ROUNDS rounds alternate the two (the
# order flips every round), each process runs WARMUP untimed steps then STEPS timed ones. Prints the
# median ms per step over rounds and spreadtrain/pytorch as the ratio of medians and the median of
# per-round ratios. Run it once per libtorch (the host's, and in scripts/matrix.sh's 2.6 root) to
# compare releases: the PyTorch side is the python3-torch of the same release. Where spreadtrain's
# start-up check switches oneDNN off (libtorch 2.6 on AVX-512, README), SPREADTRAIN_MKLDNN=0 gives
# PyTorch the same native convolutions; unset, PyTorch keeps oneDNN.
#
#   bench/thanos_step.sh            # ROUNDS=3 THREADS=1 BATCH=32 STEPS=3 WARMUP=1 PYTHON=/usr/bin/python3
#   SPREADTRAIN_MKLDNN=0 bench/thanos_step.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
source scripts/runtime-env.sh  # both sides get spreadtrain's OpenMP and malloc settings
ROUNDS=${ROUNDS:-3} THREADS=${THREADS:-1} BATCH=${BATCH:-32} STEPS=${STEPS:-3} WARMUP=${WARMUP:-1}
PY=${PYTHON:-/usr/bin/python3}
make -s gputrain
flags=(--device cpu --batch "$BATCH" --steps "$STEPS" --warmup "$WARMUP" --images $((4 * BATCH)) --threads "$THREADS")
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go_run() { bin/gputrain "${flags[@]}" --width 1 --amp off --channels-last off --cudnn-benchmark off --foreach off | tail -n 1; }
# gpu_train.py prints its JSON line first, then a table
py_run() { "$PY" bench/gpu_train.py "${flags[@]}" --impl eager 2>/dev/null | grep '^{'; }
for r in $(seq "$ROUNDS"); do
  if (( r % 2 )); then go_run; py_run; else py_run; go_run; fi | sed "s/^{/{\"round\": $r, /" >>"$out"
  echo "round $r/$ROUNDS done" >&2
done
"$PY" - "$out" <<'PY'
import json, os, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ms = {"spreadtrain": {}, "pytorch": {}}
for r in rows:
    side = "spreadtrain" if r["impl"].startswith("spreadtrain") else "pytorch"
    ms[side][r["round"]] = r["ms_per_step"]
st, pt = ms["spreadtrain"], ms["pytorch"]
rounds = sorted(set(st) & set(pt))
lib = next(r["libtorch"] for r in rows if "libtorch" in r)
tv = next(r["torch"] for r in rows if "torch" in r)
mk = "off (SPREADTRAIN_MKLDNN=0)" if os.environ.get("SPREADTRAIN_MKLDNN", "1") != "1" else "on"
print(f"libtorch {lib} (spreadtrain), torch {tv} (pytorch, oneDNN {mk}); batch {rows[0]['batch']} x 2 views, "
      f"ms per step, median over {len(rounds)} rounds")
mst, mpt = statistics.median(st.values()), statistics.median(pt.values())
rr = statistics.median(st[k] / pt[k] for k in rounds)
print(f"spreadtrain {mst:.0f}  pytorch {mpt:.0f}  ratio of medians {mst / mpt:.2f}  median per-round ratio {rr:.2f}")
print(f"rounds: spreadtrain {[round(st[k]) for k in rounds]}  pytorch {[round(pt[k]) for k in rounds]}")
PY
