#!/usr/bin/env bash
# The main job: fetch MNIST, train SupCon and Thanos on the coarse labels (digit < 5 vs >= 5) on the
# CPU, evaluate coarse-to-fine transfer on the 10 digits, and print the comparison table.
# Re-running it continues unfinished runs and skips finished ones. It starts with scripts/setup.sh, so
# a machine with only git needs nothing else first.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# setup's Go (`data fetch` runs the go command to download MNIST as a module)
export PATH=/usr/local/go/bin:$HOME/.cache/spreadtrain/go/bin:$PATH
make --no-print-directory build
bin=bin/spreadtrain
runs=${RUNS:-runs/demo}
export SPREADTRAIN_THREADS=${SPREADTRAIN_THREADS:-$(nproc)}

$bin data fetch mnist
for method in supcon thanos; do
  out=$runs/$method
  if [ -f "$out/metrics.json" ]; then
    echo "demo: $out is already trained and evaluated"
    continue
  fi
  if [ -f "$out/checkpoints/last.safetensors" ] && [ ! -f "$out/embeddings_test.png" ]; then
    $bin train --out "$out" --resume
  elif [ ! -f "$out/embeddings_test.png" ]; then
    $bin train --config mnist-demo --method "$method" --out "$out"
  fi
  $bin eval --run "$out" --knn-k 50 > /dev/null
done
echo
echo "Coarse labels: digit < 5 vs >= 5. Fine labels: the 10 digits (a linear probe on frozen features)."
$bin compare "$runs/supcon" "$runs/thanos"
echo "Plots: $runs/*/embeddings_test.png (collapse vs spread), $runs/*/training_curves.png"
