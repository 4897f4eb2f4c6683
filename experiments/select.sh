#!/usr/bin/env bash
# Chooses thanos's alpha and beta for a configuration on the VALIDATION split (never the test split):
# for each (alpha, beta) in the grid and each selection seed, train on the coarse labels, evaluate
# on the held-out validation part of the training split (`eval --on val`), and keep the candidate
# with the best mean fine-label probe among those whose mean coarse probe is within 1 point of
# SupCon's. The seeds here are selection seeds: report results at other seeds (experiments/seeds.sh).
#
#   experiments/select.sh [CONFIG]     (default mnist-demo; SEEDS, ALPHAS, BETAS, JOBS narrow or widen it)
#
# Results: experiments/results/runs/select-CONFIG/<candidate>/seed<N>/; the table and the choice:
# go run ./experiments/summarize -select select-CONFIG
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/lib.sh
config=${1:-mnist-demo}
name=$(basename "$config" .yaml)
seeds=${SEEDS:-100}
alphas=${ALPHAS:-0.8 0.9}
betas=${BETAS:-0.03 0.1 0.3}
suite=${SUITE:-select-$name}
flags=${FLAGS:-}  # more train flags, e.g. FLAGS="--epochs 8" (name the SUITE then)
runs=${RUNS:-runs/$suite}
results=experiments/results/runs/$suite
export SPREADTRAIN_THREADS=${SPREADTRAIN_THREADS:-1}

$bin data fetch mnist >/dev/null
{
  for s in $seeds; do
    echo "run_one $runs/supcon/seed$s $results/supcon/seed$s val -- --config $config --method supcon --seed $s $flags"
    for a in $alphas; do
      for b in $betas; do
        echo "run_one $runs/thanos-a$a-b$b/seed$s $results/thanos-a$a-b$b/seed$s val -- --config $config --method thanos --alpha $a --beta $b --seed $s $flags"
      done
    done
  done
} | run_jobs "${JOBS:-1}"
go run ./experiments/summarize -select "$suite"
