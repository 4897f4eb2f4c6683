#!/usr/bin/env bash
# The container's entrypoint: runs spreadtrain with the container's arguments. With NPROC_PER_NODE > 1
# (or "auto": one per visible GPU) a `train` command becomes `train --nproc-per-node N`, which starts
# one worker process per GPU on this node. Multi-node jobs instead run one container per GPU with
# torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) set: see
# docker/k8s-job.yaml. `exec` makes spreadtrain PID 1: it gets docker stop's SIGTERM, forwards it to
# its workers, and they stop after an agreed step with a checkpoint.
set -euo pipefail
bin=${SPREADTRAIN_BIN:-/opt/spreadtrain/bin/spreadtrain}
nproc=${NPROC_PER_NODE:-1}
if [ "$nproc" = auto ]; then
  nproc=$(nvidia-smi --list-gpus 2>/dev/null | grep -c '^GPU' || true)
  [ "$nproc" -ge 1 ] 2>/dev/null || nproc=1
fi
case "$nproc" in
  '' | *[!0-9]*) echo "entrypoint: NPROC_PER_NODE=$nproc: want a number of processes or auto" >&2; exit 2 ;;
esac
if [ "$nproc" -gt 1 ]; then
  if [ "${1:-}" = train ]; then
    shift
    exec "$bin" train --nproc-per-node "$nproc" "$@"
  fi
  echo "entrypoint: NPROC_PER_NODE=$nproc applies to the train command only; running: $*" >&2
fi
exec "$bin" "$@"
