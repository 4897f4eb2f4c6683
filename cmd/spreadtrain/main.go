// Command spreadtrain trains spread-out supervised contrastive representations (Chen et al.,
// "Perfectly Balanced", ICML 2022) on libtorch: train, resume, embed, evaluate, export.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// version is spreadtrain's release.
const version = "0.1.0"

// usageError marks bad input: the process exits with status 2.
type usageError struct{ error }

func badInput(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// invocation is the command line being run (the launcher passes it on to its workers).
var invocation []string

func main() {
	startupEnvironment()
	os.Exit(run(os.Args))
}

// startupEnv is environment that libraries read when they load, before main runs; main re-executes
// the program once with whichever of these the user did not set. bench/*.sh and scripts/test.sh
// export the same values, so the PyTorch references and the tests run under the same settings.
var startupEnv = []struct{ name, value string }{
	// libtorch's OpenMP threads spin while idle by default, which made training 3.6x slower here
	// when the cores were shared with other work.
	{"OMP_WAIT_POLICY", "PASSIVE"},
	// glibc returns every freed block above 32 MiB (and free memory at the top of the heap) to the
	// kernel, so each step's large tensors are mapped and zeroed afresh: a batch-256 ResNet-18 step
	// spent most of its time in page faults here. Blocks up to 1 GiB now come from the heap, and up
	// to 4 GiB of freed memory is kept for reuse: 3.7x faster steps at batch 256, for a third more
	// peak memory (bench/malloc.sh, bench/README.md; GLIBC_TUNABLES= keeps glibc's defaults). One
	// arena for all threads: another thread's arena maps every block above 64 MiB on its own, and
	// Go runs cgo calls on whichever thread is free.
	{"GLIBC_TUNABLES", mallocTunables},
}

// mallocTunables is startupEnv's glibc malloc setting (ignored by other C libraries).
const mallocTunables = "glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=4294967296:glibc.malloc.arena_max=1"

// startupEnvironment sets what startupEnv lists and the user left unset, and re-executes the
// program once if anything changed (on failure it carries on as it is).
func startupEnvironment() {
	changed := false
	for _, e := range startupEnv {
		if _, set := os.LookupEnv(e.name); !set {
			os.Setenv(e.name, e.value)
			changed = true
		}
	}
	if !changed {
		return
	}
	if exe, err := os.Executable(); err == nil {
		syscall.Exec(exe, os.Args, os.Environ()) // returns only on failure
	}
}

func run(args []string) (code int) {
	defer func() {
		// the last line of defence: no user-reachable path ends in a Go panic trace
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "spreadtrain: internal error: %v\n", r)
			code = 3
		}
	}()
	invocation = args
	app := newApp()
	if err := app.Run(args); err != nil {
		fmt.Fprintf(os.Stderr, "spreadtrain: %v\n", err)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

func newApp() *cli.App {
	app := &cli.App{
		Name:    "spreadtrain",
		Version: version + " (" + sourceRevision() + "libtorch " + torch.Version() + ")",
		Usage:   "train representations that do not collapse (SupCon + class-conditional InfoNCE + autoencoder)",
		Flags:   globalFlags(),
		Commands: []*cli.Command{trainCommand(), embedCommand(), evalCommand(), analyzeCommand(), exportCommand(),
			dataCommand(), compareCommand()},
		ExitErrHandler: func(*cli.Context, error) {}, // errors are printed once, by run
		// --set values are YAML and may hold commas (augment.crop.scale=[0.5,1])
		DisableSliceFlagSeparator: true,
	}
	for _, c := range app.Commands {
		acceptGlobalFlags(c)
	}
	return app
}

const catGlobal = "Global (also accepted before the command)"

// globalFlags are accepted before the command and after it (`spreadtrain train --threads 2`); each
// command gets its own copies, read through globalValue.
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "log-format", Category: catGlobal, Value: "text", Usage: "log format: text or json"},
		&cli.StringFlag{Name: "log-level", Category: catGlobal, Value: "info", Usage: "log level: debug, info, warn or error"},
		&cli.IntFlag{Name: "threads", Category: catGlobal, Value: 0,
			Usage: "libtorch intra-op threads (default: $SPREADTRAIN_THREADS, else one per core); for train, also train.threads"},
	}
}

// acceptGlobalFlags adds the global flags to a command and its subcommands, and applies --threads
// before the command's action runs.
func acceptGlobalFlags(c *cli.Command) {
	c.Flags = append(c.Flags, globalFlags()...)
	for _, sub := range c.Subcommands {
		acceptGlobalFlags(sub)
	}
	if action := c.Action; action != nil {
		c.Action = func(ctx *cli.Context) error {
			if err := applyThreads(ctx); err != nil {
				return err
			}
			return action(ctx)
		}
	}
}

// globalValue is a global flag's value where the command line sets it, after the command or before.
func globalValue(c *cli.Context, name string) (any, bool) {
	for _, ctx := range c.Lineage() {
		for _, set := range ctx.LocalFlagNames() {
			if set == name {
				return ctx.Value(name), true
			}
		}
	}
	return nil, false
}

func globalString(c *cli.Context, name string) string {
	if v, ok := globalValue(c, name); ok {
		return fmt.Sprint(v)
	}
	return c.String(name) // the default
}

// applyThreads sets libtorch's thread count from --threads, else from SPREADTRAIN_THREADS.
func applyThreads(c *cli.Context) error {
	n := 0
	if v, ok := globalValue(c, "threads"); ok {
		n = v.(int)
	} else if env := os.Getenv("SPREADTRAIN_THREADS"); env != "" {
		var err error
		if n, err = strconv.Atoi(env); err != nil {
			return badInput("SPREADTRAIN_THREADS=%q: want a number of threads", env)
		}
	}
	if n < 0 {
		return badInput("--threads %d: must be >= 0", n)
	}
	if n > 0 {
		torch.SetNumThreads(n)
	}
	return nil
}

// yamlScalar is a flag's value as YAML, for train.SetKey.
func yamlScalar(v any) (string, error) {
	raw, err := yaml.Marshal(v)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(raw)), nil
}

func newLogger(c *cli.Context) (*logrus.Logger, error) {
	log := logrus.New()
	log.SetOutput(os.Stderr)
	switch f := globalString(c, "log-format"); f {
	case "text":
		log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	case "json":
		log.SetFormatter(&logrus.JSONFormatter{})
	default:
		return nil, badInput("--log-format %q: want text or json", f)
	}
	lvl, err := logrus.ParseLevel(globalString(c, "log-level"))
	if err != nil {
		return nil, badInput("--log-level: %v", err)
	}
	log.SetLevel(lvl)
	if torch.CPUKernelNote != "" { // libtorch's CPU kernels failed the start-up check (pkg/torch)
		log.Warn(torch.CPUKernelNote)
	}
	return log, nil
}

// isTerminal reports whether f is a character device (a terminal), without a dependency.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// commit is the source revision, set by the build (make build: -ldflags "-X main.commit=...").
var commit string

// sourceRevision names the commit the binary was built from ("commit abc1234-dirty; " for a tree with
// uncommitted changes), so that a published result says which code produced it. It falls back to
// the Go toolchain's VCS stamp where the build set none.
func sourceRevision() string {
	if commit != "" {
		return "commit " + commit + "; "
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	rev, modified := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		return ""
	}
	if modified {
		rev += "-dirty"
	}
	return "commit " + rev + "; "
}
