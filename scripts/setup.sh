#!/usr/bin/env bash
# Installs what spreadtrain needs on Debian 12 and builds the libtorch shim. Idempotent: a second run
# installs nothing and rebuilds only what changed.
#   - cmake, g++, make: build the C++ shim (cgo/) with find_package(Torch)
#   - libtorch-dev: Debian's CPU libtorch 1.13 (a CUDA build uses TORCH_PREFIX instead, see README)
#   - libgloo-dev: gloo's headers, which libtorch's c10d headers include (the Gloo backend of pkg/dist)
#   - libopenblas0-pthread: libtorch does its matrix products through the system BLAS, and Debian's
#     default reference BLAS is ~38x slower (bench/blas.sh measures it)
#   - dataset-fashion-mnist: the Fashion-MNIST files, read from /usr/share/datasets/fashion-mnist
#   - Go: /usr/local/go if present; otherwise Debian's Go 1.19 fetches a current toolchain as a module
#
# --test also installs what the test suite compares against: Debian's CPU PyTorch and torchvision
# (python3-torch, python3-torchvision), which check exported weights and regenerate fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."
with_test=0
[ "${1:-}" = "--test" ] && with_test=1

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

packages=(cmake g++ make libtorch-dev libgloo-dev libopenblas0-pthread dataset-fashion-mnist ca-certificates git)
if [ $with_test = 1 ]; then packages+=(python3-torch python3-torchvision python3-numpy python3-protobuf); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Go: the module needs go >= 1.24. Debian 12 ships 1.19, which cannot switch toolchains itself, so it
# downloads the toolchain module (the same one GOTOOLCHAIN uses) through the module proxy.
GO_WANT=go1.24.13
go_ok() { "$1" version 2>/dev/null | awk '{split(substr($3,3),v,"."); exit !(v[1]>1 || v[2]>=24)}'; }
GO=""
for cand in go /usr/local/go/bin/go "$HOME/.cache/spreadtrain/go/bin/go"; do
  if command -v "$cand" >/dev/null 2>&1 && go_ok "$cand"; then GO=$(command -v "$cand"); break; fi
done
if [ -z "$GO" ]; then
  dpkg-query -W -f='${Status}' golang-go 2>/dev/null | grep -q "install ok installed" || {
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends golang-go
  }
  mod="golang.org/toolchain@v0.0.1-${GO_WANT}.linux-$(dpkg --print-architecture)"
  dir=$(cd /tmp && GOFLAGS=-mod=mod GOPATH="$HOME/.cache/spreadtrain/gopath" /usr/bin/go mod download -json "$mod" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  mkdir -p "$HOME/.cache/spreadtrain"
  rm -rf "$HOME/.cache/spreadtrain/go"
  cp -r "$dir" "$HOME/.cache/spreadtrain/go"
  # module files carry no execute bits: restore them on the toolchain's programs
  chmod -R u+w "$HOME/.cache/spreadtrain/go"
  chmod +x "$HOME/.cache/spreadtrain/go"/bin/* "$HOME/.cache/spreadtrain/go"/pkg/tool/*/*
  GO="$HOME/.cache/spreadtrain/go/bin/go"
  echo "setup: Go toolchain at $GO (add $(dirname "$GO") to PATH)" >&2
fi
"$GO" version >&2

make --no-print-directory shim
