#!/usr/bin/env bash
# The paper's comparison at CPU scale: CE, SimCLR, SupCon, SupCon + cNCE (spread), SupCon + autoencoder
# and Thanos, trained on coarse labels and evaluated for coarse-to-fine transfer (MNIST,
# Fashion-MNIST, CIFAR-10 JPEGs) and worst-group accuracy (coloured MNIST, Waterbirds-like), over
# several seeds; then an alpha sweep on one dataset. Results: experiments/results/*.md and .png.
#
#   experiments/run.sh [cpu|gpu]     (SEEDS="0 1 2" DATASETS="mnist ..." METHODS=... to narrow it down; ALPHAS="" skips the sweep)
#
# Re-running skips finished runs and resumes unfinished ones.
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${1:-cpu}
bin=bin/spreadtrain
runs=${RUNS:-runs/experiments-$scale}
seeds=${SEEDS:-0 1 2}
datasets=${DATASETS:-mnist fashion-mnist cifar10-jpg colored-mnist waterbirds-like}
methods=${METHODS:-ce simclr supcon spread supcon-ae thanos}
alphas=${ALPHAS-0.2 0.35 0.5 0.65 0.8 0.95 1}

# method name -> flags
method_flags() {
  case $1 in
    supcon-ae) echo "--method supcon --beta 1" ;;
    spread) echo "--method spread" ;;
    *) echo "--method $1" ;;
  esac
}

run_one() { # out, flags...
  local out=$1; shift
  if [ -f "$out/metrics.json" ]; then return; fi
  if [ -f "$out/checkpoints/last.safetensors" ]; then
    [ -f "$out/embeddings_test.png" ] || $bin train --out "$out" --resume
  else
    $bin train --out "$out" "$@"
  fi
  $bin eval --run "$out" > /dev/null
}

$bin data fetch mnist
for ds in $datasets; do
  for m in $methods; do
    for s in $seeds; do
      run_one "$runs/$ds/$m/seed$s" --config "experiments/$scale/$ds.yaml" $(method_flags "$m") --seed "$s"
    done
  done
done
sweep=${SWEEP_DATASET:-mnist}
for a in $alphas; do
  run_one "$runs/sweep-$sweep/alpha$a" --config "experiments/$scale/$sweep.yaml" --method spread --alpha "$a" --seed 0
done
mkdir -p experiments/results
go run ./experiments/summarize -runs "$runs" -out "experiments/results/$scale"
