package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// TestStartupEnvironment runs startupEnvironment in a child process (it re-executes the program) and
// checks what the child ends with: the settings where the user left them unset, the user's own where
// set, and the malloc setting's effect (a 256 MiB tensor served from the heap instead of mapped).
func TestStartupEnvironment(t *testing.T) {
	if torch.MallocMappedBytes() < 0 {
		t.Skip("SKIPPED: the C library is not glibc; GLIBC_TUNABLES does not apply")
	}
	child := func(env ...string) map[string]string {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^TestStartupEnvironmentChild$", "-test.v")
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "OMP_WAIT_POLICY=") && !strings.HasPrefix(kv, "GLIBC_TUNABLES=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, append(env, "SPREADTRAIN_STARTUP_CHILD=1")...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		got := map[string]string{}
		for _, line := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok && strings.HasPrefix(k, "child.") {
				got[strings.TrimPrefix(k, "child.")] = v
			}
		}
		return got
	}
	const tensorMiB = 256
	mapped := func(got map[string]string) int64 {
		n, err := strconv.ParseInt(got["mapped_mib"], 10, 64)
		if err != nil {
			t.Fatalf("child printed no mapped_mib: %v", got)
		}
		return n
	}

	got := child()
	if got["OMP_WAIT_POLICY"] != "PASSIVE" || got["GLIBC_TUNABLES"] != mallocTunables {
		t.Errorf("unset by the user: child has OMP_WAIT_POLICY=%q GLIBC_TUNABLES=%q, want PASSIVE and %q",
			got["OMP_WAIT_POLICY"], got["GLIBC_TUNABLES"], mallocTunables)
	}
	if m := mapped(got); m >= tensorMiB {
		t.Errorf("with spreadtrain's malloc setting a %d MiB tensor is still mapped on its own (%d MiB mapped)", tensorMiB, m)
	}

	got = child("OMP_WAIT_POLICY=ACTIVE", "GLIBC_TUNABLES=")
	if got["OMP_WAIT_POLICY"] != "ACTIVE" || got["GLIBC_TUNABLES"] != "" {
		t.Errorf("set by the user: child has OMP_WAIT_POLICY=%q GLIBC_TUNABLES=%q, want the user's ACTIVE and \"\"",
			got["OMP_WAIT_POLICY"], got["GLIBC_TUNABLES"])
	}
	if m := mapped(got); m < tensorMiB {
		t.Errorf("with glibc's defaults a %d MiB tensor should be mapped on its own; %d MiB mapped", tensorMiB, m)
	}
}

// TestStartupEnvironmentChild is TestStartupEnvironment's child process.
func TestStartupEnvironmentChild(t *testing.T) {
	if os.Getenv("SPREADTRAIN_STARTUP_CHILD") != "1" {
		t.Skip("not a test of its own: TestStartupEnvironment runs it as a child process")
	}
	startupEnvironment()
	fmt.Printf("child.OMP_WAIT_POLICY=%s\nchild.GLIBC_TUNABLES=%s\n", os.Getenv("OMP_WAIT_POLICY"), os.Getenv("GLIBC_TUNABLES"))
	torch.WithScope(func() {
		torch.Zeros([]int64{256 << 18}, torch.Float32, torch.CPU)
		fmt.Printf("child.mapped_mib=%d\n", torch.MallocMappedBytes()>>20)
	})
}

// TestRuntimeEnvFilesMatch checks that scripts/runtime-env.sh and the Makefile export exactly
// startupEnv, so that tests, benches and their PyTorch references run as spreadtrain itself does.
func TestRuntimeEnvFilesMatch(t *testing.T) {
	want := map[string]string{}
	for _, e := range startupEnv {
		want[e.name] = e.value
	}
	for _, f := range []struct{ path, prefix, sep, suffix string }{
		{"../../scripts/runtime-env.sh", "export ", "=${", "}"},
		{"../../Makefile", "export ", " ?= ", ""},
	} {
		b, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, line := range strings.Split(string(b), "\n") {
			name, rest, ok := strings.Cut(strings.TrimPrefix(line, f.prefix), f.sep)
			if !strings.HasPrefix(line, f.prefix) || !ok || want[name] == "" {
				continue
			}
			got[name] = strings.TrimSuffix(strings.TrimPrefix(rest, name+"-"), f.suffix)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s exports %v, want startupEnv's %v", f.path, got, want)
		}
	}
}
