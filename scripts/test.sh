#!/usr/bin/env bash
# The whole test suite, the README's test command (and the first thing CI runs): installs what is
# missing (scripts/setup.sh --test), builds the shim, then vets and tests every package. Needs only
# git and a shell to start with: setup installs make, cmake, g++, Python and the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --test
export PATH=/usr/local/go/bin:$HOME/.cache/spreadtrain/go/bin:$PATH
# idle OpenMP threads sleep instead of spinning: much faster on shared cores (cmd/spreadtrain/main.go)
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
go vet ./...
SPREADTRAIN_THREADS=1 go test -count=1 -timeout 25m ./...
