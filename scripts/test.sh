#!/usr/bin/env bash
# The whole test suite, the README's test command (and the first thing CI runs): installs what is
# missing (scripts/setup.sh --test), builds the shim, then vets and tests every package. Needs only
# git and a shell to start with: setup installs make, cmake, g++, Python and the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --test
export PATH=/usr/local/go/bin:$HOME/.cache/spreadtrain/go/bin:$PATH
# the settings spreadtrain gives itself (idle OpenMP threads sleep, large blocks stay in the heap)
source scripts/runtime-env.sh
go vet ./...
SPREADTRAIN_THREADS=1 go test -count=1 -timeout 25m ./...
