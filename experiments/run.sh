#!/usr/bin/env bash
# The paper's comparison at a chosen scale: every method of METHODS trained on coarse labels and
# evaluated (coarse-to-fine transfer on MNIST, Fashion-MNIST, CIFAR-10 JPEGs; worst-group accuracy on
# coloured MNIST and Waterbirds-like) at every seed of SEEDS. --seed draws the data subset and the
# validation split as well as the initialisation, so the spread over seeds includes the data's.
#
#   experiments/run.sh [cpu|gpu]     (SEEDS="0 1 2" DATASETS="mnist ..." METHODS=... JOBS=1 narrow it down)
#
# Each run's small outputs go to experiments/results/runs/SCALE/DATASET/METHOD/seedN/ (commit them);
# `go run ./experiments/summarize` then writes experiments/results/SCALE.md. Re-running skips finished
# runs and resumes unfinished ones. Choose alpha and beta of each config first, on validation:
# experiments/select.sh experiments/SCALE/DATASET.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/lib.sh
scale=${1:-cpu}
runs=${RUNS:-runs/experiments-$scale}
seeds=${SEEDS:-0 1 2}
datasets=${DATASETS:-mnist fashion-mnist cifar10-jpg colored-mnist waterbirds-like}
methods=${METHODS:-ce simclr supcon spread supcon-ae thanos supcon-2b thanos-2b}

# method name -> flags
method_flags() {
  case $1 in
    supcon-ae) echo "--method supcon --beta 0.3" ;;  # SupCon + autoencoder, at thanos's default beta
    *) echo "--method $1" ;;
  esac
}

$bin data fetch mnist >/dev/null
for ds in $datasets; do
  for m in $methods; do
    for s in $seeds; do
      echo "run_one $runs/$ds/$m/seed$s experiments/results/runs/$scale/$ds/$m/seed$s test -- --config experiments/$scale/$ds.yaml $(method_flags "$m") --seed $s"
    done
  done
done | run_jobs "${JOBS:-1}"
go run ./experiments/summarize
