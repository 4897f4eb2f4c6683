#!/usr/bin/env bash
# The device check: one run on a GPU machine (no Go, no network) of everything that matters on CUDA,
# in under 10 minutes, writing logs and a summary under $OUT. docs/gpu.md says how to run it.
#
#   make gpucheck                          # here, where Go is: fills bin/gpucheck (carry it)
#   OUT=/tmp/gc bench/gpu_check.sh         # on the GPU machine
#   GPU_CHECK_DEVICE=cpu PYTHON=/usr/bin/python3 OUT=/tmp/gc bench/gpu_check.sh   # the CPU rehearsal
#
# Parts, each time-boxed, each run whatever happened to the others:
#   shim   cmake + build of cgo/ against the Python torch's libtorch (CMake, a C++ compiler and, for a
#          CUDA libtorch, nvcc: find_package(Torch) probes the CUDA toolkit)
#   tests  the test binaries' CUDA tests (SPREADTRAIN_TEST_CUDA=1: a missing GPU fails them)
#   nccl   a process group of world size 1 over NCCL through the shim's c10d path
#   dist   the trainer launched by this Python's torchrun (the agent's store): one worker on the
#          device, then two Gloo workers on the CPU, uninterrupted and with one killed and the
#          workers restarted by torchrun (they resume by themselves); the step losses are compared.
#          Without a usable torchrun (PyTorch < 2), spreadtrain's own --nproc-per-node, said so
#   smoke  spreadtrain train --config ci-smoke on the device, then the same run interrupted (SIGINT
#          after its first checkpoint) and resumed; the step losses of the two are compared
#   move   a CPU run stopped at its first checkpoint and resumed with --device on the device (a run
#          moved to a GPU); its step losses against the smoke part's device run, within MOVE_TOL
#   losses L_spread forward + backward at M = 8,192 to 65,536 anchors: dense and blockwise paths and
#          PyTorch, time and device peak memory (bench/losses.sh's measurement on the device)
#   bench  bench/gpu_train.sh: the Thanos step, spreadtrain against PyTorch eager and torch.compile
# Environment: OUT (./gpu_check_out), GPU_CHECK_DEVICE (cuda; cpu rehearses every part on the CPU),
# PYTHON (python3), KIT (bin/gpucheck), SHIM_BUILD (build/cgo-gpu; the rehearsal uses build/cgo),
# SHIM_PREBUILT (rehearsal only: a libspreadtorch.so to use instead of building one),
# BUDGET (570 seconds for the whole run), BOX_SCALE (1: multiplies each part's box and the budget, for
# a rehearsal on a slow or shared CPU).
set -uo pipefail
set -a # every variable reaches the parts, which run in a child bash (timeout cannot run a function)
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu_check_out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
DEVICE=${GPU_CHECK_DEVICE:-cuda}
PY=${PYTHON:-python3}
KIT=${KIT:-bin/gpucheck}
KIT=$(cd "$KIT" 2>/dev/null && pwd || echo "$ROOT/$KIT")
BOX_SCALE=${BOX_SCALE:-1}
BUDGET=$(( ${BUDGET:-570} * BOX_SCALE ))
SUMMARY=$OUT/summary.txt
if [ "$DEVICE" = cpu ]; then
  SHIM_BUILD=${SHIM_BUILD:-build/cgo}
  TEST_CUDA=cpu
  BENCH_ENV=(DEVICE=cpu BATCH=8 STEPS=2 WARMUP=1 IMAGES=64 IMPL=eager,eager-fast)
else
  SHIM_BUILD=${SHIM_BUILD:-build/cgo-gpu}
  TEST_CUDA=1
  BENCH_ENV=(DEVICE=cuda STEPS=${STEPS:-30} WARMUP=${WARMUP:-5})
fi
: >"$SUMMARY"
note() { echo "$*" | tee -a "$SUMMARY"; }

# part NAME SECONDS CMD...: runs CMD (a command or an exported function) with its output in $OUT/NAME.log, for at most SECONDS or what is
# left of the budget (keeping 15 s for the parts after), and records the outcome in the summary
part() {
  local name=$1 limit=$(($2 * BOX_SCALE)); shift 2
  local left=$((BUDGET - SECONDS - 15))
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -lt 10 ]; then
    note "$name: NOT RUN (the ${BUDGET}s budget is spent)"
    return 1
  fi
  local start=$SECONDS rc
  echo "== [${SECONDS}s] $name (at most ${limit}s): $*" >&2
  timeout -k 10 "$limit" bash -c '"$@"' "$name" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  local verdict=ok
  [ $rc -ne 0 ] && verdict="FAILED (exit $rc$([ $rc -eq 124 ] && echo ", timed out after ${limit}s"))"
  note "$name: $verdict in $((SECONDS - start))s; log $name.log"
  return $rc
}

note "gpu_check $(date -u +%FT%TZ) device=$DEVICE commit=$(cat "$KIT/COMMIT" 2>/dev/null || echo unknown)"
{
  "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())'
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  command -v nvcc >/dev/null && nvcc --version | tail -1
  cmake --version | head -1
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt" >>"$SUMMARY"
[ -x "$KIT/spreadtrain" ] || note "MISSING $KIT/spreadtrain: run make gpucheck where Go is and carry bin/gpucheck"

# ---- shim ----
build_shim() {
  if [ -n "${SHIM_PREBUILT:-}" ]; then # a rehearsal on a machine too busy to build: reuse a shim
    echo "SHIM_PREBUILT: $SHIM_PREBUILT copied to $SHIM_BUILD, not built"
    mkdir -p "$SHIM_BUILD" && cp "$SHIM_PREBUILT" "$SHIM_BUILD/"
    return
  fi
  local prefix
  prefix=$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)') || return 1
  local args=(-S cgo -B "$SHIM_BUILD" -DCMAKE_BUILD_TYPE=Release)
  if [ -d "$prefix/Torch" ]; then
    args+=(-DCMAKE_PREFIX_PATH="$prefix")
  else
    echo "no Torch CMake files under '$prefix'; using the system libtorch (Debian's python3-torch has none)"
  fi
  echo "cmake ${args[*]}"
  TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} cmake "${args[@]}" && cmake --build "$SHIM_BUILD" -j "$(nproc)"
}
export -f build_shim
part shim 240 build_shim
# the fresh shim first, then libtorch's own folder and the pip CUDA libraries (nvidia/*/lib)
libdirs=$("$PY" -c '
import glob, os, torch
lib = os.path.join(os.path.dirname(torch.__file__), "lib")
site = os.path.dirname(os.path.dirname(torch.__file__))
print(":".join([lib] + sorted(glob.glob(os.path.join(site, "nvidia", "*", "lib")))))' 2>/dev/null)
export LD_LIBRARY_PATH="$ROOT/$SHIM_BUILD:$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
source "$ROOT/scripts/runtime-env.sh"  # spreadtrain's OpenMP and malloc settings

# ---- tests: every CUDA test of the kit's test binaries, from their package folder (testdata) ----
unit_tests() {
  local bin pkg rc=0
  for bin in "$KIT"/tests/*.test; do
    pkg=$(basename "$bin" .test)
    echo "--- pkg/$pkg"
    (cd "pkg/$pkg" && SPREADTRAIN_TEST_CUDA=$TEST_CUDA "$bin" -test.run "${TEST_RUN:-CUDA}" -test.skip NCCL -test.v -test.count 1) || rc=1
  done
  return $rc
}
export -f unit_tests
part tests 150 unit_tests
grep -E '^(--- |ok|FAIL|PASS)' "$OUT/tests.log" | sed 's/^/  /' >>"$SUMMARY"

# ---- nccl ----
part nccl 60 bash -c "cd pkg/torch && SPREADTRAIN_TEST_CUDA=$TEST_CUDA '$KIT/tests/torch.test' -test.run NCCL -test.v"
grep -E '^--- ' "$OUT/nccl.log" | sed 's/^/  /' >>"$SUMMARY"

# compare_losses A B: the step losses of two runs' metrics.jsonl, at most TOL apart (default 1e-3).
# A logged loss is the mean over the steps since the previous log line, and a stop logs early, so
# only steps whose window is the same in both runs are compared; both must reach the same last step.
compare_losses() {
  "$PY" - "$1/metrics.jsonl" "$2/metrics.jsonl" "${TOL:-1e-3}" <<'PY'
import json, sys
def windows(path):
    recs = [json.loads(l) for l in open(path) if l.strip()]
    steps = {}
    for r in recs:  # a restarted run logs again the steps after its checkpoint: the last line wins
        if r.get("kind") == "step":
            steps[r["step"]] = r["values"]["loss"]
    order = sorted(steps)
    return {s: (prev, steps[s]) for prev, s in zip([0] + order, order)}
a, b, tol = windows(sys.argv[1]), windows(sys.argv[2]), float(sys.argv[3])
common = sorted(s for s in set(a) & set(b) if a[s][0] == b[s][0])
diff = max((abs(a[s][1] - b[s][1]) for s in common), default=float("nan"))
last_a, last_b = max(a, default=0), max(b, default=0)
print(f"step losses: last step {last_a} uninterrupted, {last_b} resumed; {len(common)} logged over the same steps compared, max |difference| {diff:.3g} (tolerance {tol:g})")
sys.exit(0 if common and last_a == last_b and last_a in common and diff <= tol else 1)
PY
}
export -f compare_losses

# stop_at_checkpoint RUNDIR TRAIN-ARGS...: starts the trainer on RUNDIR and sends it SIGINT once its
# first checkpoint is written (it stops after saving)
stop_at_checkpoint() {
  local dir=$1; shift
  "$KIT/spreadtrain" --log-format json train "$@" --out "$dir" &
  local pid=$!
  while kill -0 $pid 2>/dev/null && [ ! -e "$dir/checkpoints/last.safetensors" ]; do sleep 0.2; done
  kill -INT $pid 2>/dev/null
  wait $pid
  echo "(exit $? after SIGINT)"
}
export -f stop_at_checkpoint

# ---- smoke: train, then interrupt and resume, and compare ----
smoke() {
  local data=$KIT/data/cifar10-jpg st=$KIT/spreadtrain
  local common=(--config ci-smoke --data-dir "$data" --device "$DEVICE")
  rm -rf "$OUT/smoke" "$OUT/smoke-resumed"
  echo "--- uninterrupted"
  "$st" --log-format json train "${common[@]}" --out "$OUT/smoke" || return 1
  echo "--- interrupted at its first checkpoint"
  stop_at_checkpoint "$OUT/smoke-resumed" "${common[@]}"
  echo "--- resumed"
  "$st" --log-format json train --out "$OUT/smoke-resumed" --resume || return 1
  compare_losses "$OUT/smoke" "$OUT/smoke-resumed"
}
export -f smoke
part smoke 120 smoke
tail -1 "$OUT/smoke.log" | sed 's/^/  /' >>"$SUMMARY"

# ---- move: a CPU run interrupted at its first checkpoint, resumed with --device on the device ----
move() {
  local data=$KIT/data/cifar10-jpg st=$KIT/spreadtrain
  rm -rf "$OUT/moved"
  echo "--- on the CPU, interrupted at its first checkpoint"
  stop_at_checkpoint "$OUT/moved" --config ci-smoke --data-dir "$data" --device cpu
  echo "--- resumed on $DEVICE"
  "$st" --log-format json train --out "$OUT/moved" --resume --device "$DEVICE" || return 1
  [ "$DEVICE" = cpu ] || grep -q '"train.device"' "$OUT/moved/metrics.jsonl" || { echo "no resume record of the device change"; return 1; }
  # CPU and device arithmetic differ: the same run within a looser tolerance than the same-device resume
  TOL=${MOVE_TOL:-5e-2} compare_losses "$OUT/smoke" "$OUT/moved"
}
export -f move
part move 90 move
tail -1 "$OUT/move.log" | sed 's/^/  /' >>"$SUMMARY"

# ---- dist: the trainer under torchrun, as users launch it ----
# torchrun_usable: PyTorch 1.x's torchrun fails on Python 3.11 in its log redirection
torchrun_usable() {
  "$PY" -c 'import sys, torch, torch.distributed.run
v = torch.__version__
sys.exit(0 if int(v.split(".")[0]) >= 2 else f"PyTorch {v}: its torchrun fails on Python 3.11 (log redirection)")'
}
export -f torchrun_usable
# a_worker PARENT: one of PARENT's children (torchrun --no_python starts the workers as its own
# children); which one does not matter, torchrun restarts them all. Not pgrep: the device may lack procps
a_worker() {
  local stat c
  for stat in /proc/[0-9]*/stat; do
    c=${stat#/proc/}; c=${c%/stat}
    [ "$(cut -d' ' -f4 "$stat" 2>/dev/null)" = "$1" ] && { echo "$c"; return 0; }
  done
  return 1
}
export -f a_worker
dist() {
  local data=$KIT/data/cifar10-jpg st=$KIT/spreadtrain
  local args=(--log-format json train --config ci-smoke --data-dir "$data" --dist-timeout 60s)
  # the underscore spellings: torchrun of PyTorch 2.x takes them as well as the hyphenated ones
  local torchrun=("$PY" -m torch.distributed.run --standalone --no_python)
  export SPREADTRAIN_THREADS=${SPREADTRAIN_THREADS:-4} # the same threads in the runs compared
  rm -rf "$OUT"/dist-*
  if ! torchrun_usable; then
    echo "FALLBACK: no usable torchrun in $PY; the two Gloo workers run under spreadtrain's own launcher (--nproc-per-node 2), and no torchrun restart is tried"
    "$st" "${args[@]}" --device cpu --nproc-per-node 2 --out "$OUT/dist-gloo" || return 1
    echo "torchrun: NOT RUN (fallback: spreadtrain --nproc-per-node 2 passed)"
    return 3
  fi
  if [ "$DEVICE" = cuda ]; then
    echo "--- torchrun, one worker on cuda (LOCAL_RANK 0, the agent's store)"
    "${torchrun[@]}" --nproc_per_node 1 "$st" "${args[@]}" --device cuda --out "$OUT/dist-cuda" || return 1
  fi
  echo "--- torchrun, two Gloo workers on the CPU"
  "${torchrun[@]}" --nproc_per_node 2 "$st" "${args[@]}" --device cpu --out "$OUT/dist-gloo" || return 1
  echo "--- torchrun --max_restarts 1, two Gloo workers, one killed after step 2"
  "${torchrun[@]}" --nproc_per_node 2 --max_restarts 1 "$st" "${args[@]}" --device cpu --out "$OUT/dist-restart" &
  local pid=$! victim=""
  until [ -n "$victim" ] || ! kill -0 $pid 2>/dev/null; do
    grep -q '"kind":"step","step":[2-9]' "$OUT/dist-restart/metrics.jsonl" 2>/dev/null && victim=$(a_worker $pid)
    sleep 0.2
  done
  [ -n "$victim" ] && kill -KILL "$victim" && echo "(killed a worker, pid $victim)"
  wait $pid || { echo "torchrun exited $? after the restart"; return 1; }
  [ -n "$victim" ] || { echo "the run ended before a worker could be killed: the restart was not tried"; return 1; }
  TOL=${DIST_TOL:-1e-5} compare_losses "$OUT/dist-gloo" "$OUT/dist-restart"
}
export -f dist
part dist 150 dist
{ grep -E '^(FALLBACK|torchrun:|step losses|\(killed)' "$OUT/dist.log"
  grep -o "resuming from the run's last checkpoint[^\"]*" "$OUT/dist.log" | head -1; } | sed 's/^/  /' >>"$SUMMARY"

# ---- losses: L_spread forward + backward on the device, dense and blockwise paths and PyTorch ----
# device memory from outside: the GPU's memory in use, polled, minus what was in use before the
# process started (its CUDA context included, and the caching allocator's whole reservation: what
# decides whether a batch fits); PyTorch's own max_memory_allocated as well
gpu_used() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 2>/dev/null || echo 0; }
export -f gpu_used
losses() {
  local m impl pid mem base peak dense_max=${LOSSES_DENSE_MAX:-32768}
  for m in ${LOSSES_M:-8192 32768 65536}; do
    for impl in dense blockwise pytorch; do
      [ "$impl" != blockwise ] && [ "$m" -gt "$dense_max" ] && continue
      base=$(gpu_used) peak=$base
      if [ "$impl" = pytorch ]; then
        "$PY" bench/losses.py --m "$m" --repeats 3 --device "$DEVICE" >"$OUT/losses-$m-$impl.json" &
      else
        "$KIT/losses" -m "$m" -path "$impl" -repeats 3 -device "$DEVICE" >"$OUT/losses-$m-$impl.json" &
      fi
      pid=$!
      while kill -0 $pid 2>/dev/null; do
        mem=$(gpu_used)
        [ "$mem" -gt "$peak" ] && peak=$mem
        sleep 0.1
      done
      wait $pid || { echo "M=$m $impl: exit status $?"; continue; }
      echo "M=$m $impl: device peak $((peak - base)) MiB (nvidia-smi) $(cat "$OUT/losses-$m-$impl.json")"
    done
  done
}
export -f losses
part losses 90 losses
grep '^M=' "$OUT/losses.log" | sed -E 's/"times_ms": ?\[[^]]*\], ?//; s/^/  /' >>"$SUMMARY"

# ---- bench ----
part bench 330 env "${BENCH_ENV[@]}" PYTHON="$PY" SHIM_BUILD="$SHIM_BUILD" GPUTRAIN_BIN="$KIT/gputrain" \
  RESULTS="$OUT/bench" bench/gpu_train.sh
grep -A40 '^impl ' "$OUT/bench.log" >>"$SUMMARY" || tail -5 "$OUT/bench.log" >>"$SUMMARY"

note "total ${SECONDS}s"
