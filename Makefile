# spreadtrain: set-up, build and test. `make setup` is idempotent; `make test` runs the whole suite.
SHELL := /bin/bash
BUILD := build
SHIM := $(BUILD)/cgo/libspreadtorch.so
BIN := bin/spreadtrain
# CMAKE_PREFIX_PATH for a CUDA libtorch, e.g. $(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
TORCH_PREFIX ?=
export PATH := /usr/local/go/bin:$(HOME)/.cache/spreadtrain/go/bin:$(PATH)
# spreadtrain's start-up settings (startupEnv in cmd/spreadtrain/main.go): idle OpenMP threads sleep,
# large blocks stay in the heap
export OMP_WAIT_POLICY ?= PASSIVE
export GLIBC_TUNABLES ?= glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=4294967296:glibc.malloc.arena_max=1

.PHONY: setup shim build test matrix demo gputrain clean

setup:
	./scripts/setup.sh

shim: $(SHIM)

$(SHIM): cgo/CMakeLists.txt cgo/*.cpp cgo/*.h
	cmake -S cgo -B $(BUILD)/cgo -DCMAKE_BUILD_TYPE=Release $(if $(TORCH_PREFIX),-DCMAKE_PREFIX_PATH=$(TORCH_PREFIX)) >/dev/null
	cmake --build $(BUILD)/cgo -j $$(nproc)

build: $(SHIM)
	go build -ldflags "-X main.commit=$$(git describe --always --dirty 2>/dev/null)" -o $(BIN) ./cmd/spreadtrain
	cp $(SHIM) bin/

# the README's main job: set up, build, fetch MNIST, train SupCon and Thanos, compare transfer
demo:
	./scripts/demo.sh

# the GPU training benchmark's Go half (bench/gpu_train.sh runs it against a CUDA shim)
gputrain: $(SHIM)
	go build -o bin/gputrain ./bench/gputrain

# the README's test command: set up, build the shim, vet and test everything
test:
	./scripts/test.sh

# the libtorch matrix (root): Debian 13's libtorch 2.6, CPU (whole suite) and CUDA (build and link)
matrix:
	./scripts/matrix.sh

clean:
	rm -rf $(BUILD) bin

# ---- the GPU device check's kit (bench/gpu_check.sh, docs/gpu.md) ----
# Everything the GPU machine (no Go, no network) needs besides the source tree, in bin/gpucheck (carry
# that one path): the CLI, the benchmarks, test binaries of the packages with CUDA tests, and a small
# CIFAR-10 JPEG subset for the training smoke. The Go binaries load libspreadtorch.so by name, so the
# shim gpu_check.sh builds there against the CUDA libtorch is the one they use.
GPUCHECK := bin/gpucheck
GPUCHECK_TESTS := torch supcon data train
GO_SMALL := -trimpath -ldflags='-s -w'
.PHONY: gpucheck
gpucheck: $(SHIM)
	rm -rf $(GPUCHECK) && mkdir -p $(GPUCHECK)/tests
	git rev-parse --short HEAD >$(GPUCHECK)/COMMIT
	go build $(GO_SMALL) -o $(GPUCHECK)/spreadtrain ./cmd/spreadtrain
	go build $(GO_SMALL) -o $(GPUCHECK)/gputrain ./bench/gputrain
	go build $(GO_SMALL) -o $(GPUCHECK)/losses ./bench/losses
	for p in $(GPUCHECK_TESTS); do go test -c $(GO_SMALL) -o $(GPUCHECK)/tests/$$p.test ./pkg/$$p || exit 1; done
	python3 bench/gpu_check_data.py $(GPUCHECK)/data/cifar10-jpg
	du -sh $(GPUCHECK)
