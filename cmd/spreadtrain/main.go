// Command spreadtrain trains spread-out supervised contrastive representations (Chen et al.,
// "Perfectly Balanced", ICML 2022) on libtorch: train, resume, embed, evaluate, export.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"syscall"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

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
	passiveOpenMP()
	os.Exit(run(os.Args))
}

// passiveOpenMP re-executes the program once with OMP_WAIT_POLICY=PASSIVE unless the user chose a
// policy. libtorch's OpenMP runtime reads the variable when it loads, before main runs; its default
// (idle threads spin) made training 3.6x slower here when the cores were shared with other work.
func passiveOpenMP() {
	if _, set := os.LookupEnv("OMP_WAIT_POLICY"); set {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	os.Setenv("OMP_WAIT_POLICY", "PASSIVE")
	syscall.Exec(exe, os.Args, os.Environ()) // returns only on failure: then carry on as we are
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
	return &cli.App{
		Name:    "spreadtrain",
		Version: version + " (" + sourceRevision() + "libtorch " + torch.Version() + ")",
		Usage:   "train representations that do not collapse (SupCon + class-conditional InfoNCE + autoencoder)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log format: text or json"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "log level: debug, info, warn or error"},
			&cli.IntFlag{Name: "threads", Value: 0, EnvVars: []string{"SPREADTRAIN_THREADS"},
				Usage: "libtorch intra-op threads (0: libtorch's default, one per core)"},
		},
		Before: func(c *cli.Context) error {
			if n := c.Int("threads"); n > 0 {
				torch.SetNumThreads(n)
			}
			return nil
		},
		Commands: []*cli.Command{trainCommand(), embedCommand(), evalCommand(), analyzeCommand(), exportCommand(),
			dataCommand(), compareCommand()},
		ExitErrHandler: func(*cli.Context, error) {}, // errors are printed once, by run
	}
}

func newLogger(c *cli.Context) (*logrus.Logger, error) {
	log := logrus.New()
	log.SetOutput(os.Stderr)
	switch f := c.String("log-format"); f {
	case "text":
		log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	case "json":
		log.SetFormatter(&logrus.JSONFormatter{})
	default:
		return nil, badInput("--log-format %q: want text or json", f)
	}
	lvl, err := logrus.ParseLevel(c.String("log-level"))
	if err != nil {
		return nil, badInput("--log-level: %v", err)
	}
	log.SetLevel(lvl)
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
