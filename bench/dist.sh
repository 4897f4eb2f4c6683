#!/usr/bin/env bash
# Data-parallel step time on this machine: one SupCon step of an MLP (512-1024-128, float32) on a
# global batch of 256x2 views, by 1 process (1 and 2 intra-op threads) and by 2 Gloo processes with
# 128 samples each over loopback, plus the gradient bytes all-reduced per step.
# Needs the shim (make shim). Prints one line per configuration.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
SPREADTRAIN_DIST_BENCH=1 go test -count=1 -run '^TestBenchStepTime$' -v ./pkg/dist/ | grep -E 'procs=|FAIL|ok'
