package dockercheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const root = "../.."

func repoFile(t *testing.T, rel string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func requireClean(t *testing.T, errs []error) {
	t.Helper()
	for _, e := range errs {
		t.Error(e)
	}
}

// requireError wants at least one problem mentioning want.
func requireError(t *testing.T, errs []error, want string) {
	t.Helper()
	for _, e := range errs {
		if strings.Contains(e.Error(), want) {
			return
		}
	}
	t.Errorf("no error mentions %q; got %v", want, errs)
}

func TestDockerfileCUDA(t *testing.T) {
	requireClean(t, Check(root, filepath.Join(root, "Dockerfile.cuda"), Options{Inherited: DefaultInherited}))
}

func TestCompose(t *testing.T) {
	requireClean(t, CheckCompose(root, filepath.Join(root, "docker", "compose.yaml")))
}

func TestK8sJob(t *testing.T) {
	requireClean(t, CheckK8s(root, filepath.Join(root, "docker", "k8s-job.yaml")))
}

func TestEntrypointSyntax(t *testing.T) {
	if err := ShellSyntax(filepath.Join(root, "docker", "entrypoint.sh")); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(t.TempDir(), "entrypoint.sh")
	src := strings.Replace(repoFile(t, "docker/entrypoint.sh"), "fi\nexec", "exec", 1)
	if err := os.WriteFile(broken, []byte(src), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := ShellSyntax(broken); err == nil {
		t.Fatal("bash -n passed a script with an unclosed if")
	}
}

// edit replaces old (which must occur) in s.
func edit(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("the mutation's anchor %q is not in the file any more; update the test", old)
	}
	return strings.Replace(s, old, new, 1)
}

// Broken copies of Dockerfile.cuda, checked against the real build context, each fail with the
// problem named.
func TestBrokenDockerfiles(t *testing.T) {
	good := repoFile(t, "Dockerfile.cuda")
	cases := []struct {
		name, old, new, want string
	}{
		{"unknown instruction", "RUN go mod download", "RUNN go mod download", `unknown instruction "RUNN"`},
		{"unknown flag", "COPY --from=builder", "COPY --form=builder", "COPY has no flag --form"},
		{"unnamed stage", "-runtime AS runtime", "-runtime", "every stage needs a name"},
		{"duplicate stage", "-runtime AS runtime", "-runtime AS builder", `stage name "builder" is used twice`},
		{"copy from a missing stage", "COPY --from=builder", "COPY --from=buildr", "no earlier stage has that name"},
		{"copy from an untagged image", "COPY --from=golang:1.24-bookworm", "COPY --from=golang/go", "not an image reference with a tag"},
		{"undeclared variable", "SPREADTRAIN_DATA=/data", "SPREADTRAIN_DATA=${DATA_ROOT}", "$DATA_ROOT is not declared"},
		{"undeclared FROM variable", "pytorch/pytorch:${PYTORCH_TAG}-runtime", "pytorch/pytorch:${PYTORCH_VERSION}-runtime", "$PYTORCH_VERSION is not declared by an ARG"},
		{"global ARG not redeclared", "WORKDIR /runs", "WORKDIR /runs/${PYTORCH_TAG}", `$PYTORCH_TAG is not declared (ARG or ENV) in stage "runtime"`},
		{"unpinned base", "pytorch/pytorch:${PYTORCH_TAG}-devel", "pytorch/pytorch", "pin a tag"},
		{"latest base", "pytorch/pytorch:${PYTORCH_TAG}-runtime", "pytorch/pytorch:latest", "pin a tag"},
		{"missing source", "COPY cgo ./cgo", "COPY cgo2 ./cgo", "cgo2 does not exist"},
		{"source outside the context", "COPY cgo ./cgo", "COPY ../cgo ./cgo", "inside the build context"},
		{"source excluded by .dockerignore", "COPY cgo ./cgo", "COPY tools ./tools", "tools is excluded from the build context"},
		{"several sources into a file", "/opt/spreadtrain/bin/\n", "/opt/spreadtrain/bin\n", "destination folder ending in /"},
		{"no entrypoint", `ENTRYPOINT ["/opt/spreadtrain/entrypoint.sh"]`, "", "has no ENTRYPOINT"},
		{"shell-form entrypoint", `ENTRYPOINT ["/opt/spreadtrain/entrypoint.sh"]`, "ENTRYPOINT /opt/spreadtrain/entrypoint.sh", "exec form"},
		{"bad JSON", `CMD ["--help"]`, `CMD ["--help"`, "JSON array"},
		{"entrypoint not copied", `ENTRYPOINT ["/opt/spreadtrain/entrypoint.sh"]`, `ENTRYPOINT ["/opt/spreadtrain/start.sh"]`, "is not copied into the final stage"},
		{"dangling continuation", `CMD ["--help"]`, `CMD ["--help"] \`, "ends inside a line continuation"},
		{"instruction before FROM", "ARG PYTORCH_TAG=", "WORKDIR /x\nARG PYTORCH_TAG=", "first instruction must be FROM"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "Dockerfile.cuda")
			if err := os.WriteFile(f, []byte(edit(t, good, c.old, c.new)), 0o644); err != nil {
				t.Fatal(err)
			}
			requireError(t, Check(root, f, Options{Inherited: DefaultInherited}), c.want)
		})
	}
}

// An entrypoint script copied without an execute bit, or with a syntax error, fails the check.
func TestBrokenEntrypointScript(t *testing.T) {
	ctx := t.TempDir()
	write := func(rel, text string, mode os.FileMode) {
		p := filepath.Join(ctx, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
	}
	df := "FROM debian:12 AS run\nCOPY e.sh /e.sh\nENTRYPOINT [\"/e.sh\"]\n"
	write("Dockerfile", df, 0o644)
	write("e.sh", "#!/bin/bash\nexec true \"$@\"\n", 0o644)
	requireError(t, Check(ctx, filepath.Join(ctx, "Dockerfile"), Options{}), "not executable")
	write("Dockerfile", strings.Replace(df, "COPY ", "COPY --chmod=0755 ", 1), 0o644)
	requireClean(t, Check(ctx, filepath.Join(ctx, "Dockerfile"), Options{}))
	write("e.sh", "#!/bin/bash\nif true; then\nexec true\n", 0o755)
	requireError(t, Check(ctx, filepath.Join(ctx, "Dockerfile"), Options{}), "bash -n")
}

func TestParse(t *testing.T) {
	ins, err := Parse("# syntax=docker/dockerfile:1\n# a comment\nFROM a:1 AS x\nRUN one \\\n  # dropped\n\n  two\nENV A=1 \\\n    B=\"2 3\"\nCMD [\"x\", \"y\"]\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 4 || ins[1].Args != "one two" || ins[1].Line != 4 || ins[3].JSON[1] != "y" {
		t.Fatalf("parsed %+v", ins)
	}
	if k := envKeys(ins[2].Args); len(k) != 2 || k[0] != "A" || k[1] != "B" {
		t.Fatalf("ENV keys %v", k)
	}
	refs := varsIn(`${A} $B ${C:-x} '$D' \$E`)
	if len(refs) != 3 || refs[0].name != "A" || refs[1].name != "B" || !refs[2].hasDefault {
		t.Fatalf("variables %+v", refs)
	}
}

func TestDockerignore(t *testing.T) {
	d, err := ParseDockerignore("*\n!go.mod\n!pkg/\n**/testdata\n!pkg/keep/testdata\nbuild/**/*.o\n")
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		"go.mod": false, "go.sum": true, "pkg/torch/torch.go": false, "pkg/nn/testdata/x.npy": true,
		"pkg/keep/testdata/y": false, "tools/x.py": true, "data/cifar/x.bin": true,
	} {
		if got := d.Excluded(path); got != want {
			t.Errorf("Excluded(%s) = %v, want %v", path, got, want)
		}
	}
	b, _ := ParseDockerignore("build/**/*.o\n")
	if !b.Excluded("build/a/b/c.o") || !b.Excluded("build/c.o") || b.Excluded("build/c.go") {
		t.Error("** patterns")
	}
}

// Broken copies of the manifests fail with the problem named.
func TestBrokenManifests(t *testing.T) {
	compose := repoFile(t, "docker/compose.yaml")
	k8s := repoFile(t, "docker/k8s-job.yaml")
	cases := []struct {
		name, file, old, new, want string
	}{
		{"compose: YAML", "compose", "services:\n", "services:\n  x: [\n", "yaml"},
		{"compose: no GPU", "compose", "count: 1\n", "count: 0\n", "count 0"},
		{"compose: capabilities", "compose", "capabilities: [gpu]", "capabilities: [compute]", "capabilities: [gpu]"},
		{"compose: flag typo", "compose", `"--device", "cuda"]`, `"--devcie", "cuda"]`, "no flag --devcie"},
		{"compose: unknown config", "compose", `"reference-resnet18", "--out", "/runs/reference-resnet18",`, `"resnet-18", "--out", "/runs/reference-resnet18",`, "not a built-in configuration"},
		{"compose: dockerfile", "compose", "dockerfile: Dockerfile.cuda", "dockerfile: Dockerfile.gpu", "build:"},
		{"compose: no multi", "compose", "NPROC_PER_NODE: ${NPROC_PER_NODE:-auto}", "OTHER: x", "multi-GPU one"},
		{"k8s: YAML", "k8s", "kind: Service\n", "kind: Service\n  bad: [\n", "yaml"},
		{"k8s: restart policy", "k8s", "restartPolicy: Never", "restartPolicy: Always", "restartPolicy must be Never"},
		{"k8s: world size", "k8s", "value: \"4\"", "value: \"8\"", "must agree"},
		{"k8s: rank", "k8s", "job-completion-index", "job-index", "RANK should come"},
		{"k8s: master address", "k8s", "value: spreadtrain-multi-0.spreadtrain-multi", "value: spreadtrain-multi-0", "MASTER_ADDR"},
		{"k8s: service", "k8s", "clusterIP: None", "clusterIP: 10.0.0.1", "headless"},
		{"k8s: port", "k8s", "value: \"29500\"", "value: \"port\"", "MASTER_PORT"},
		{"k8s: volume", "k8s", "- {name: runs, mountPath: /runs}", "- {name: run, mountPath: /runs}", "names no volume"},
		{"k8s: gpu", "k8s", "nvidia.com/gpu: 1", "nvidia.com/gpus: 1", "nvidia.com/gpu must be >= 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// the copy sits where the original is, so that relative paths resolve the same way
			dir := filepath.Join(t.TempDir(), "docker")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			src, check := compose, CheckCompose
			if c.file == "k8s" {
				src, check = k8s, CheckK8s
			}
			f := filepath.Join(dir, c.file+".yaml")
			if err := os.WriteFile(f, []byte(edit(t, src, c.old, c.new)), 0o644); err != nil {
				t.Fatal(err)
			}
			if c.file == "compose" {
				// build.context is .. of the compose file: give the copy the repository's Dockerfile
				if err := os.WriteFile(filepath.Join(dir, "..", "Dockerfile.cuda"), []byte(repoFile(t, "Dockerfile.cuda")), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			requireError(t, check(root, f), c.want)
		})
	}
}
