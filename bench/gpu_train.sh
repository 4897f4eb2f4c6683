#!/usr/bin/env bash
# Training-step throughput on one GPU: spreadtrain (bench/gputrain) against the same step in PyTorch
# eager and under torch.compile (bench/gpu_train.py), in one run: images/s of each, the ratios, and
# model FLOP utilisation against the H200's peaks. ResNet-18 (CIFAR stem) + the thanos objective
# (SupCon + cNCE + autoencoder), 2 views, batch 512, 32x32 uint8 images resident on the GPU,
# augmentation on the GPU, AdamW. spreadtrain runs with its speed switches all off (plain, float32),
# each one alone (amp, channels_last, cudnn_benchmark, foreach: every switch measured on and off),
# and all on (fast, the CUDA default); PyTorch plain (eager) and with the same switches (eager-fast,
# compile-fast).
#
# NOT YET RUN ON A GPU IN THIS PROJECT. It has been run on CPU only (tiny settings, PyTorch 1.13); no
# GPU figure has been measured. Expect to fix small things on the first CUDA run.
#
# Needs: a CUDA machine with PyTorch 2.x (its pip/conda install carries a CUDA libtorch with headers and
# CMake files) and torchvision, cmake, g++ and the CUDA toolkit's nvcc (find_package(Torch) probes the
# CUDA toolkit: a pip torch alone is not enough); no network. The Go program is prebuilt, since the GPU
# machine has no Go: `make gputrain` (or `make gpucheck`, whose bin/gpucheck/gputrain
# bench/gpu_check.sh passes as GPUTRAIN_BIN) wherever Go is, and carry bin/ (ignored by git, so it
# travels only when carried). If go is on PATH and the binary is missing, it is built here.
#
#   bench/gpu_train.sh                                              # on the GPU machine, < 8 minutes
#   DEVICE=cpu BATCH=8 STEPS=2 WARMUP=1 IMAGES=64 PYTHON=/usr/bin/python3 bench/gpu_train.sh   # smoke
#
# Environment: PYTHON (python3), DEVICE (cuda), BATCH (512), STEPS (50), WARMUP (10), IMAGES (50000),
# IMPL (eager,eager-fast,compile-fast), SWITCHES (1: each switch alone too; 0: plain and fast only), GPUTRAIN_BIN
# (bin/gputrain), SHIM_BUILD (build/cgo-bench: a build folder of its own, so that a CPU build/cgo is
# left alone), TORCH_PREFIX (default: the Python torch's cmake_prefix_path), RESULTS (a folder that
# keeps each run's JSON line; default: a temporary one).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
BATCH=${BATCH:-512}
STEPS=${STEPS:-50}
WARMUP=${WARMUP:-10}
IMAGES=${IMAGES:-50000}
IMPL=${IMPL:-eager,eager-fast,compile-fast}
SHIM_BUILD=${SHIM_BUILD:-build/cgo-bench}
GPUTRAIN_BIN=${GPUTRAIN_BIN:-bin/gputrain}
bench_flags=(--device "$DEVICE" --batch "$BATCH" --steps "$STEPS" --warmup "$WARMUP" --images "$IMAGES")
phase() { echo "== [${SECONDS}s] $*" >&2; }

echo "NOTE: bench/gpu_train.sh has not been run on a GPU in this project yet; these are its first figures." >&2
phase "python: $("$PY" -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())')"
if [ "$DEVICE" != cpu ]; then
  "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else "torch.cuda.is_available() is False")'
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >&2 || true
fi

# 1. the shim against this Python's libtorch
TORCH_PREFIX=${TORCH_PREFIX-$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)')}
cmake_args=(-S cgo -B "$SHIM_BUILD" -DCMAKE_BUILD_TYPE=Release)
if [ -n "$TORCH_PREFIX" ] && [ -d "$TORCH_PREFIX/Torch" ]; then
  cmake_args+=(-DCMAKE_PREFIX_PATH="$TORCH_PREFIX")
else
  echo "gpu_train.sh: no Torch CMake files under '$TORCH_PREFIX'; using the system libtorch (a CPU-only Debian python3-torch has none)" >&2
fi
phase "cmake ${cmake_args[*]}"
# CUDA architectures are only used for .cu files, which the shim has none of; setting them skips
# libtorch's CMake probing of the GPU
TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} cmake "${cmake_args[@]}" >"$SHIM_BUILD.cmake.log" 2>&1 \
  || { cat "$SHIM_BUILD.cmake.log" >&2; exit 1; }
cmake --build "$SHIM_BUILD" -j "$(nproc)" >"$SHIM_BUILD.build.log" 2>&1 \
  || { tail -50 "$SHIM_BUILD.build.log" >&2; exit 1; }

# 2. the Go benchmark: prebuilt, or built here if Go is present (it links the shim by name only)
if [ ! -x "$GPUTRAIN_BIN" ]; then
  command -v go >/dev/null || { echo "gpu_train.sh: $GPUTRAIN_BIN is missing and there is no go to build it (run make gputrain where Go is and carry bin/gputrain)" >&2; exit 1; }
  phase "go build -o $GPUTRAIN_BIN ./bench/gputrain"
  CGO_ENABLED=1 CGO_LDFLAGS="-L$PWD/$SHIM_BUILD" go build -o "$GPUTRAIN_BIN" ./bench/gputrain
fi
# the fresh shim first, then libtorch and the CUDA libraries of the pip packages (nvidia/*/lib)
libdirs=$("$PY" -c '
import glob, os, torch
lib = os.path.join(os.path.dirname(torch.__file__), "lib")
site = os.path.dirname(os.path.dirname(torch.__file__))
print(":".join([lib] + sorted(glob.glob(os.path.join(site, "nvidia", "*", "lib")))))')
export LD_LIBRARY_PATH="$PWD/$SHIM_BUILD:$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

if [ -n "${RESULTS:-}" ]; then
  out=$RESULTS
  mkdir -p "$out"
else
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
off=(--amp off --channels-last off --cudnn-benchmark off --foreach off)
run_spreadtrain() { # name, switch flags (the last of a repeated flag wins)
  local name=$1; shift
  phase "spreadtrain $name: $GPUTRAIN_BIN ${bench_flags[*]} $*"
  timeout 100 "$GPUTRAIN_BIN" "${bench_flags[@]}" "$@" | tee "$out/$name.json" \
    || { echo "spreadtrain $name failed; the other rows go on" >&2; rm -f "$out/$name.json"; }
}
run_spreadtrain plain "${off[@]}"
if [ "${SWITCHES:-1}" = 1 ]; then
  for sw in amp channels-last cudnn-benchmark foreach; do run_spreadtrain "$sw" "${off[@]}" "--$sw" on; done
fi
run_spreadtrain fast --amp on --channels-last on --cudnn-benchmark on --foreach on

phase "pytorch ($IMPL): bench/gpu_train.py ${bench_flags[*]}"
timeout "${PY_TIMEOUT:-300}" "$PY" bench/gpu_train.py "${bench_flags[@]}" --impl "$IMPL" --spreadtrain $(ls "$out"/*.json 2>/dev/null) | tee "$out/pytorch.txt"
phase "done"
