#!/usr/bin/env bash
# The libtorch matrix: builds and tests spreadtrain against Debian 13's libtorch 2.6 in two debootstrap
# roots, beside the host's own libtorch (Debian 12's 1.13, which the README's test command covers).
#   cpu:  libtorch-dev 2.6 (CPU), gloo headers, OpenBLAS, python3-torch/torchvision 2.6: runs the
#         README's test command there, i.e. the whole suite, data-parallel included.
#   cuda: libtorch-cuda-dev 2.6 (CUDA 12.4), nvidia-cuda-toolkit, libnccl-dev: builds the shim and the
#         Go binary, and checks that the NCCL backend is compiled in and the binary links. Nothing runs
#         there: that needs a GPU and cuDNN 9 (see nvidia-cudnn below).
# Usage: scripts/matrix.sh [cpu] [cuda]      (default: both; needs root for debootstrap and chroot)
#
# The roots are cached under ${XDG_CACHE_HOME:-~/.cache}/spreadtrain/roots and reused: a second run
# installs nothing and rebuilds only what changed. Apt in the roots uses the host's own Debian mirror,
# read from /etc/apt/sources.list*; an unreachable mirror fails the matrix.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
suite=trixie
cache=${XDG_CACHE_HOME:-$HOME/.cache}/spreadtrain/roots
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(cpu cuda)

die() { echo "matrix: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, mount): run it as root or with sudo"

# The host's Debian mirror: the first deb source (deb822 or one-line) that is not a -security suite.
host_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'BEGIN{RS=""; FS="\n"}
      { uris=""; suites=""; types=""
        for (i=1;i<=NF;i++) {
          if ($i ~ /^URIs:/) uris=substr($i,6)
          if ($i ~ /^Suites:/) suites=substr($i,8)
          if ($i ~ /^Types:/) types=substr($i,7) }
        if (types ~ /(^| )deb( |$)/ && suites !~ /security/ && uris ~ /\/debian\/?( |$)/) {
          split(uris, u, " "); print u[1]; exit } }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1=="deb" { i=2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
      if ($(i+1) !~ /security/ && $i ~ /\/debian\/?$/) { print $i; exit } }' "$f"
  done
}
mirror=${MATRIX_MIRROR:-$(host_mirror | head -n 1)}
[ -n "$mirror" ] || die "no Debian mirror in /etc/apt/sources.list*; set MATRIX_MIRROR"

# The Go toolchain to copy into the roots: the one setup.sh would use on this host.
go_bin=""
for cand in go /usr/local/go/bin/go "$HOME/.cache/spreadtrain/go/bin/go"; do
  if command -v "$cand" >/dev/null 2>&1; then go_bin=$(command -v "$cand"); break; fi
done
[ -n "$go_bin" ] || die "no Go on this host: run scripts/setup.sh first"
goroot=$("$go_bin" env GOROOT)
gomodcache=$("$go_bin" env GOMODCACHE)
goflags=$("$go_bin" env GOFLAGS)
goproxy=$("$go_bin" env GOPROXY)
ca_bundle=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}

# Mounts made in a root, undone on any exit (innermost first).
mounts=()
cleanup() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
    umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" || echo "matrix: could not unmount ${mounts[i]}" >&2
  done
  mounts=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM
bind() {  # bind SRC DST [ro]
  mkdir -p "$2"
  mount --bind "$1" "$2"
  mounts+=("$2")
  if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$2"; fi
}

# Runs a command in a root as root, with Go, the host's CA bundle and module cache.
in_root() {
  local root=$1; shift
  chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive \
    PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    SSL_CERT_FILE=/etc/spreadtrain-host-ca.crt GOFLAGS="$goflags" GOPROXY="$goproxy" \
    OMP_WAIT_POLICY=PASSIVE bash -c "$*"
}

# Makes (once) and enters the root $cache/$suite-NAME, setting $root: debootstrap, apt sources, Go,
# the working tree; mounts /proc, /sys, /dev, the module cache. (Not in a subshell: it keeps the mounts.)
enter_root() {
  local name=$1
  root=$cache/$suite-$1
  if [ ! -f "$root/.spreadtrain-root" ]; then
    echo "matrix: debootstrap $suite into $root from $mirror" >&2
    rm -rf "$root.partial"
    mkdir -p "$cache"
    debootstrap --variant=minbase --components=main,contrib,non-free "$suite" "$root.partial" "$mirror" \
      > "$cache/$suite-$name.debootstrap.log" 2>&1 \
      || die "debootstrap of $suite failed (mirror $mirror unreachable?): see $cache/$suite-$name.debootstrap.log"
    touch "$root.partial/.spreadtrain-root"
    rm -rf "$root"
    mv "$root.partial" "$root"
  fi
  printf 'deb %s %s main contrib non-free\ndeb %s %s-updates main contrib non-free\n' \
    "$mirror" "$suite" "$mirror" "$suite" > "$root/etc/apt/sources.list"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  cp "$ca_bundle" "$root/etc/spreadtrain-host-ca.crt"
  if ! cmp -s "$goroot/VERSION" "$root/usr/local/go/VERSION"; then
    rm -rf "$root/usr/local/go"
    cp -a "$goroot" "$root/usr/local/go"
  fi
  bind /proc "$root/proc"
  bind /sys "$root/sys" ro
  bind /dev "$root/dev"
  mkdir -p "$gomodcache"
  bind "$gomodcache" "$root/root/go/pkg/mod"
  # the working tree (tracked and untracked, not ignored) over the root's copy; build/ is kept so that
  # a second run rebuilds only what changed (tar keeps the files' times)
  local src=$root/src/spreadtrain
  mkdir -p "$src"
  find "$src" -mindepth 1 -maxdepth 1 ! -name build ! -name bin ! -name .cache -exec rm -rf {} +
  git -C "$repo" ls-files -co --exclude-standard -z | tar -C "$repo" --null -T - -cf - | tar -C "$src" -xf -
  if [ -d "$repo/../shared" ]; then bind "$repo/../shared" "$root/src/shared" ro; fi
}

# Installs packages missing in a root.
apt_in_root() {
  local root=$1; shift
  in_root "$root" "missing=(); for p in $*; do dpkg-query -W -f='\${Status}' \$p 2>/dev/null | grep -q 'install ok installed' || missing+=(\$p); done
    [ \${#missing[@]} -eq 0 ] || { apt-get update -q && apt-get install -y -q --no-install-recommends \"\${missing[@]}\"; }"
}

stage_cpu() {
  local t0=$SECONDS
  enter_root cpu
  # scripts/setup.sh installs the rest (libtorch-dev 2.6, gloo, OpenBLAS, python3-torch 2.6, ...)
  apt_in_root "$root" ca-certificates git
  in_root "$root" "cd /src/spreadtrain && ./scripts/test.sh" || die "cpu: the test suite failed on libtorch 2.6 ($root)"
  # Neither Gloo nor NCCL headers: gloo's hidden under an empty directory (this libtorch has no NCCL).
  # dist.cpp is the one source that includes them, so compiling it is the check.
  mkdir -p "$root/tmp/spreadtrain-empty"
  bind "$root/tmp/spreadtrain-empty" "$root/usr/include/gloo" ro
  in_root "$root" "set -e; cd /src/spreadtrain; mkdir -p build
    cmake -S cgo -B build/cgo-bare -DCMAKE_BUILD_TYPE=Release -UGLOO_INCLUDE_DIR > build/cmake-bare.log 2>&1 || { cat build/cmake-bare.log; exit 1; }
    grep -q 'Gloo backend is compiled out' build/cmake-bare.log || { echo 'gloo headers still found'; exit 1; }
    cmake --build build/cgo-bare --target dist.cpp.o" \
    || die "cpu: the shim does not build without gloo headers ($root)"
  echo "matrix: cpu: libtorch $(in_root "$root" "dpkg-query -W -f='\${Version}' libtorch-dev"): built, whole suite passed, builds without gloo/nccl headers ($((SECONDS - t0)) s)" >&2
  cleanup
}

# nvidia-cudnn is an installer that downloads cuDNN from NVIDIA when it is configured, which fails
# offline and leaves libtorch-cuda unconfigured. Building needs none of cuDNN's files (libtorch-cuda
# links it at run time), so the root gets a dummy package of that name instead; running a CUDA build
# needs the real cuDNN 9.
cudnn_dummy() {
  local root=$1
  in_root "$root" "set -e
    dpkg-query -W -f='\${Version}' nvidia-cudnn 2>/dev/null | grep -q spreadtrain && exit 0
    apt-get update -q
    v=\$(apt-cache policy nvidia-cudnn | sed -n 's/^ *Candidate: //p')
    [ -n \"\$v\" ] && [ \"\$v\" != '(none)' ] || { echo 'matrix: nvidia-cudnn not in the archive (contrib missing?)' >&2; exit 1; }
    provides=\$(apt-cache show \"nvidia-cudnn=\$v\" | sed -n 's/^Provides: //p' | head -n 1)
    d=\$(mktemp -d); mkdir \$d/DEBIAN
    printf 'Package: nvidia-cudnn\nVersion: %s+spreadtrain.dummy\nArchitecture: amd64\nMaintainer: spreadtrain matrix <root@localhost>\n%sDescription: stands in for the cuDNN installer (build only)\n' \
      \"\$v\" \"\${provides:+Provides: \$provides
}\" > \$d/DEBIAN/control
    dpkg-deb --build \$d /tmp/nvidia-cudnn-dummy.deb >/dev/null
    dpkg -i /tmp/nvidia-cudnn-dummy.deb"
}

stage_cuda() {
  local t0=$SECONDS
  enter_root cuda
  apt_in_root "$root" ca-certificates git cmake g++ make
  cudnn_dummy "$root"
  # libgloo-cuda-dev: the gloo headers of this flavour (libgloo-dev conflicts with libtorch-cuda)
  apt_in_root "$root" libtorch-cuda-dev nvidia-cuda-toolkit libnccl-dev libgloo-cuda-dev
  in_root "$root" "set -e; cd /src/spreadtrain; mkdir -p build
    cmake -S cgo -B build/cgo -DCMAKE_BUILD_TYPE=Release > build/cmake.log 2>&1 || { cat build/cmake.log; exit 1; }
    cmake --build build/cgo -j \$(nproc)
    # libtorch_cuda's cuDNN symbols stay unresolved at link time (the dummy has no libcudnn.so.9);
    # the loader resolves them from the real cuDNN 9 on a GPU machine
    CGO_LDFLAGS=-Wl,--allow-shlib-undefined go build -o bin/spreadtrain ./cmd/spreadtrain
    cp build/cgo/libspreadtorch.so bin/" \
    || die "cuda: the build failed on libtorch-cuda 2.6 ($root)"
  # The NCCL backend is compiled in when the shim calls ProcessGroupNCCL (its constructor is
  # undefined in the shim and resolved from libtorch_cuda); a CMake warning means it was compiled out.
  local shim=$root/src/spreadtrain/bin/libspreadtorch.so
  grep -q "NCCL backend is compiled out" "$root/src/spreadtrain/build/cmake.log" && die "cuda: nccl.h not found, NCCL compiled out"
  # (grep without -q reads all of nm's output: an early exit would fail the pipe under pipefail)
  nm -DC --undefined-only "$shim" | grep "c10d::ProcessGroupNCCL::ProcessGroupNCCL" >/dev/null \
    || die "cuda: the shim does not reference ProcessGroupNCCL: NCCL backend compiled out"
  in_root "$root" "ldd /src/spreadtrain/bin/libspreadtorch.so | grep libtorch_cuda.so >/dev/null" \
    || die "cuda: the shim is not linked against libtorch_cuda"
  echo "matrix: cuda: libtorch-cuda $(in_root "$root" "dpkg-query -W -f='\${Version}' libtorch-cuda-dev"): shim and binary built and linked, NCCL compiled in ($((SECONDS - t0)) s)" >&2
  cleanup
}

for s in "${stages[@]}"; do
  case $s in
    cpu) stage_cpu ;;
    cuda) stage_cuda ;;
    *) die "unknown stage $s (cpu, cuda)" ;;
  esac
done
