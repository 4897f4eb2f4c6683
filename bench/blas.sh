#!/usr/bin/env bash
# Reference BLAS vs OpenBLAS under spreadtrain, one run: the same program (bench/blas: a 512x512
# float32 matmul, and Linear 512->512 forward + backward at batch 256) with LD_LIBRARY_PATH pointing
# at /usr/lib/x86_64-linux-gnu/blas (netlib reference) and then at .../openblas-pthread, whose
# libblas.so.3 libtorch_cpu then loads instead of the update-alternatives choice. OpenBLAS runs its
# own pthread pool, which at::set_num_threads does not control, so it is measured with its default
# thread count and with OPENBLAS_NUM_THREADS=1 (libtorch's count is THREADS, 1 by default).
# For each configuration the script prints the libblas/liblapack files mapped into the process
# (/proc/self/maps) and the library the dynamic linker bound sgemm_ to (LD_DEBUG=bindings): both
# matter, since Debian's liblapack.so.3 (OpenBLAS's) pulls libopenblas.so.0 in every configuration.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
ROUNDS=${ROUNDS:-3} ITERS=${ITERS:-5} REPEATS=${REPEATS:-3} THREADS=${THREADS:-1}
LIB=/usr/lib/x86_64-linux-gnu
go build -o build/blasbench ./bench/blas
configs=(ref openblas openblas-1t)
envs() {
  case $1 in
    ref) echo "LD_LIBRARY_PATH=$LIB/blas" ;;
    openblas) echo "LD_LIBRARY_PATH=$LIB/openblas-pthread" ;;
    openblas-1t) echo "LD_LIBRARY_PATH=$LIB/openblas-pthread OPENBLAS_NUM_THREADS=1" ;;
  esac
}
echo "which BLAS each configuration loads:"
for c in "${configs[@]}"; do
  dbg=$(mktemp -d)
  env $(envs "$c") LD_DEBUG=bindings LD_DEBUG_OUTPUT="$dbg/ld" ./build/blasbench -iters 1 -repeats 1 -label "$c" >"$dbg/out"
  mapped=$(/usr/bin/python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["mapped"]))' "$dbg/out")
  bound=$(cat "$dbg"/ld.* | grep "binding file [^ ]*libtorch_cpu" | grep -m1 "symbol \`sgemm_'" | sed -E 's/.*binding file ([^ ]+) .* to ([^ ]+) .*/\1 -> \2/' || true)
  printf '  %-12s %s\n  %-12s mapped: %s\n  %-12s sgemm_ bound: %s\n' "$c" "$(envs "$c")" "" "$mapped" "" "${bound:-none seen}"
  rm -rf "$dbg"
done
out=$(mktemp)
for r in $(seq "$ROUNDS"); do
  for c in "${configs[@]}"; do
    env $(envs "$c") ./build/blasbench -threads "$THREADS" -iters "$ITERS" -repeats "$REPEATS" -label "$c" | sed "s/^{/{\"round\":$r,/" >>"$out"
  done
done
/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys
from collections import defaultdict
rows = [json.loads(l) for l in open(sys.argv[1])]
t = defaultdict(lambda: defaultdict(list))
for r in rows:
    for k in ("matmul512_ms", "linear256_fwd_bwd_ms"):
        t[k][r["label"]].append(r[k])
print(f"\nmedian of {len(rows) // 3} rounds (ms per call); factor = reference / configuration")
print(f"{'':<24} {'reference':>10} {'openblas':>10} {'openblas 1t':>12} {'factor':>7} {'factor 1t':>10}")
for k, name in (("matmul512_ms", "matmul 512x512"), ("linear256_fwd_bwd_ms", "Linear 256x512->512 f+b")):
    m = {c: statistics.median(v) for c, v in t[k].items()}
    print(f"{name:<24} {m['ref']:>10.2f} {m['openblas']:>10.2f} {m['openblas-1t']:>12.2f} "
          f"{m['ref'] / m['openblas']:>6.1f}x {m['ref'] / m['openblas-1t']:>9.1f}x")
PY
