# Shared by the experiment scripts: train a run (or resume it), evaluate it, and copy its small
# outputs into the repository, where experiments/summarize reads them.
#   run_one RUNDIR RESULTDIR ON -- TRAIN FLAGS...
# ON is test (metrics.json) or val (metrics_val.json: hyper-parameter selection). RESULTDIR receives
# config.yaml, the metrics file, last_metrics.jsonl (the last step and epoch records of metrics.jsonl)
# and version.txt
# (which code produced it: `spreadtrain --version`); checkpoints stay in RUNDIR. Re-running skips
# finished runs and resumes unfinished ones.
bin=${BIN:-bin/spreadtrain}

run_one() {
  local out=$1 result=$2 on=$3; shift 4
  local metrics=metrics.json
  [ "$on" = val ] && metrics=metrics_val.json
  # a failed step ends this run (with the tool's message) before anything is copied
  if [ ! -f "$out/$metrics" ]; then
    mkdir -p "$out"
    $bin --version > "$out/version.txt" || return
    if [ -f "$out/checkpoints/last.safetensors" ]; then
      [ -f "$out/embeddings_test.png" ] || $bin train --out "$out" --resume || return
    else
      $bin train --out "$out" "$@" || return
    fi
    $bin eval --run "$out" --on "$on" > /dev/null || return
  fi
  mkdir -p "$result"
  cp "$out/config.yaml" "$out/$metrics" "$out/version.txt" "$result/"
  { grep '"kind":"step"' "$out/metrics.jsonl" | tail -n 1; grep '"kind":"epoch"' "$out/metrics.jsonl" | tail -n 1; } > "$result/last_metrics.jsonl"
}

# run_jobs N: runs the lines of standard input as commands (each a run_one call), N at a time.
run_jobs() {
  export -f run_one
  export bin
  xargs -P "$1" -I{} -d '\n' bash -c '{}'
}
