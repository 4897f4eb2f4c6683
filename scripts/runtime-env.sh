# Sourced by the scripts that run programs other than the spreadtrain command (test binaries, bench
# binaries, the PyTorch references): the environment spreadtrain sets for itself at start-up
# (startupEnv in cmd/spreadtrain/main.go; TestRuntimeEnvFilesMatch keeps the two equal), so that
# everything runs under the same settings. A variable the caller set, even to "", is kept.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY-PASSIVE}
export GLIBC_TUNABLES=${GLIBC_TUNABLES-glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=4294967296:glibc.malloc.arena_max=1}
