#!/usr/bin/env bash
# Op-call overhead, one run: ns per small op (add of two 1-element float32 tensors; 0-d item read)
# called from C++ directly against libtorch, through the shim's C ABI from C++, from Go (cgo + shim,
# pkg/torch BenchmarkSmallOp) and from PyTorch eager. ROUNDS rounds, the implementations interleaved
# in each; every round reports the median of REPEATS timed loops of ITERS calls; the table shows the
# median over rounds and Go/C++ ratios. One intra-op thread. Needs `make shim`, cmake, python3-torch.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
ROUNDS=${ROUNDS:-5} ITERS=${ITERS:-200000} REPEATS=${REPEATS:-5}
cmake -S bench/cpp -B build/bench-cpp -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/bench-cpp -j "$(nproc)" >/dev/null
go test -c -o build/torch.test ./pkg/torch
out=$(mktemp)
for r in $(seq "$ROUNDS"); do
  echo "round $r/$ROUNDS" >&2
  ./build/bench-cpp/op_overhead "$ITERS" "$REPEATS" >>"$out"
  ./build/bench-cpp/op_overhead_shim "$ITERS" "$REPEATS" >>"$out"
  # the Go benchmark does the same ITERS calls per loop; -count REPEATS loops, median taken below
  ./build/torch.test -test.run '^$' -test.bench 'SmallOp' -test.benchtime "${ITERS}x" -test.count "$REPEATS" |
    awk -v r="$r" '/ns\/op/ { n=$1; sub(/^BenchmarkSmallOp\//, "", n); sub(/-[0-9]+$/, "", n);
      printf "{\"impl\":\"go\",\"op\":\"%s\",\"ns\":%s,\"round\":%s}\n", n, $3, r }' >>"$out"
  /usr/bin/python3 bench/op_overhead.py --iters "$ITERS" --repeats "$REPEATS" >>"$out"
done
/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys
from collections import defaultdict
rows = [json.loads(l) for l in open(sys.argv[1])]
# Go prints every loop; reduce to one median per round like the others
per = defaultdict(list)
goloops = defaultdict(list)
for r in rows:
    if r["impl"] == "go":
        goloops[(r["op"], r["round"])].append(r["ns"])
    else:
        per[(r["impl"], r["op"])].append(r["ns"])
for (op, rnd), v in goloops.items():
    per[("go", op)].append(statistics.median(v))
med = {k: statistics.median(v) for k, v in per.items()}
print(f"\n{'impl':<10} {'op':<10} {'ns/op (median of rounds)':>25} {'rounds':>30}")
for k in sorted(med):
    print(f"{k[0]:<10} {k[1]:<10} {med[k]:>25.0f}   {' '.join(f'{x:.0f}' for x in per[k])}")
cpp_add, cpp_item = med[("cpp", "add")], med[("cpp", "item")]
print("\nratios against C++ (libtorch direct), medians:")
for impl, op, ref in (("shim-c", "add", cpp_add), ("go", "add/free", cpp_add), ("go", "add/scope", cpp_add),
                      ("pytorch", "add", cpp_add), ("shim-c", "item", cpp_item), ("go", "item", cpp_item),
                      ("pytorch", "item", cpp_item)):
    if (impl, op) in med:
        print(f"  {impl}/{op:<10} / cpp: {med[(impl, op)] / ref:5.2f}   (+{med[(impl, op)] - ref:.0f} ns)")
# per-round ratio medians (each round's numbers were measured close together)
def rr(a, b):
    return statistics.median(x / y for x, y in zip(per[a], per[b]))
print(f"  per-round median ratio go add/free / cpp add: {rr(('go', 'add/free'), ('cpp', 'add')):.2f}; "
      f"go item / cpp item: {rr(('go', 'item'), ('cpp', 'item')):.2f}")
PY
