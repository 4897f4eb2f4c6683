#!/usr/bin/env bash
# The main job's claim at seeds that were not used for choosing anything: train each method of
# METHODS with CONFIG at each of SEEDS (--seed draws the data subset and the validation split too),
# evaluate on the test split, and keep the small outputs in the repository.
#
#   experiments/seeds.sh [CONFIG]     (default mnist-demo; SEEDS="1 2 3", METHODS="supcon thanos", JOBS=1)
#
# Results: experiments/results/runs/seeds-CONFIG/<method>/seed<N>/; tables: go run ./experiments/summarize
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/lib.sh
config=${1:-mnist-demo}
name=$(basename "$config" .yaml)
seeds=${SEEDS:-1 2 3}
methods=${METHODS:-supcon thanos}
suite=${SUITE:-seeds-$name}
flags=${FLAGS:-}  # more train flags, e.g. FLAGS="--epochs 8" (name the SUITE then)
runs=${RUNS:-runs/$suite}
results=experiments/results/runs/$suite
export SPREADTRAIN_THREADS=${SPREADTRAIN_THREADS:-1}

$bin data fetch mnist >/dev/null
for m in $methods; do
  for s in $seeds; do
    echo "run_one $runs/$m/seed$s $results/$m/seed$s test -- --config $config --method $m --seed $s $flags"
  done
done | run_jobs "${JOBS:-1}"
go run ./experiments/summarize
