package dist

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// SpawnConfig describes a local multi-process launch.
type SpawnConfig struct {
	NProc   int
	Program string        // default: this executable
	Args    []string      // arguments after the program name
	Env     []string      // extra KEY=VALUE entries on top of this process's environment
	Stdout  io.Writer     // default os.Stdout; each line is prefixed with "[rank N] "
	Stderr  io.Writer     // default os.Stderr
	Grace   time.Duration // after a failure, SIGTERM the others and SIGKILL them after Grace (default 5s)
	Timeout time.Duration // 0: none; otherwise every worker is stopped after this long
	// ForwardSignals: a SIGTERM or SIGINT to the launcher is passed on to every worker, which then
	// stops at an agreed step after writing a checkpoint; the launcher waits for all of them (no
	// SIGKILL) and returns a *SignalError.
	ForwardSignals bool
}

// SignalError reports a launch that ended because the launcher was asked to stop; the workers got
// the signal and exited on their own.
type SignalError struct {
	Signal os.Signal
	Failed []string // workers that exited non-zero ("rank 1: exit status 1"), as stopping workers do
}

func (e *SignalError) Error() string {
	return fmt.Sprintf("dist: spawn: got %v and passed it on to the workers, which stopped", e.Signal)
}

// WorkerError reports the worker whose failure ended the launch.
type WorkerError struct {
	Rank   int
	Pid    int
	Status string // "exit status 3", "signal: killed", or the start error
}

func (e *WorkerError) Error() string {
	return fmt.Sprintf("dist: worker rank %d (pid %d) failed: %s; the other workers were stopped", e.Rank, e.Pid, e.Status)
}

// Spawn runs the current binary nproc times with torchrun's variables set (RANK, LOCAL_RANK,
// WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1) and waits for all of them. The workers meet
// through a FileStore in a private temporary folder and talk over the loopback interface only
// (Gloo binds 127.0.0.1; NCCL_SOCKET_IFNAME=lo unless set), so a single-machine job opens no socket
// another machine could reach. When a worker exits non-zero the others are stopped, and the error
// names that worker's rank and status. SIGTERM and SIGINT are forwarded to the workers.
func Spawn(nproc int, args []string, env []string) error {
	return SpawnWith(context.Background(), SpawnConfig{NProc: nproc, Args: args, Env: env, ForwardSignals: true})
}

// SpawnWith is Spawn with every option; cancelling ctx stops the workers.
func SpawnWith(ctx context.Context, c SpawnConfig) error {
	if c.NProc < 1 {
		return fmt.Errorf("dist: spawn: nproc %d must be >= 1", c.NProc)
	}
	if c.Program == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("dist: spawn: finding this executable: %w", err)
		}
		c.Program = exe
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
	if c.Grace <= 0 {
		c.Grace = 5 * time.Second
	}
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	storeDir, err := os.MkdirTemp("", "spreadtrain-rendezvous-") // mode 0700: this user's only
	if err != nil {
		return fmt.Errorf("dist: spawn: a folder for the rendezvous store: %w", err)
	}
	defer os.RemoveAll(storeDir)
	base := withoutKeys(os.Environ(), launchKeys...)
	if _, set := os.LookupEnv("NCCL_SOCKET_IFNAME"); !set {
		base = append(base, "NCCL_SOCKET_IFNAME=lo") // NCCL's bootstrap and transport on loopback
	}
	base = append(base, c.Env...)
	var sigs chan os.Signal
	if c.ForwardSignals {
		sigs = make(chan os.Signal, 2)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
		defer signal.Stop(sigs)
	}

	var outMu sync.Mutex // one line at a time on the shared writers
	type result struct {
		rank int
		pid  int
		err  error
	}
	done := make(chan result, c.NProc)
	cmds := make([]*exec.Cmd, c.NProc)
	var writers []*prefixWriter
	var startErr error
	for r := 0; r < c.NProc; r++ {
		cmd := exec.Command(c.Program, c.Args...)
		cmd.Env = append(append([]string(nil), base...),
			"RANK="+strconv.Itoa(r), "LOCAL_RANK="+strconv.Itoa(r), "WORLD_SIZE="+strconv.Itoa(c.NProc),
			"LOCAL_WORLD_SIZE="+strconv.Itoa(c.NProc), "MASTER_ADDR=127.0.0.1", StoreFileVar+"="+filepath.Join(storeDir, "store"))
		prefix := fmt.Sprintf("[rank %d] ", r)
		ow := &prefixWriter{prefix: prefix, w: c.Stdout, mu: &outMu}
		ew := &prefixWriter{prefix: prefix, w: c.Stderr, mu: &outMu}
		writers = append(writers, ow, ew)
		cmd.Stdout, cmd.Stderr = ow, ew
		cmd.SysProcAttr = workerAttr()
		cmd.WaitDelay = c.Grace // a grandchild holding our pipes cannot stall Wait
		if err := cmd.Start(); err != nil {
			startErr = &WorkerError{Rank: r, Status: "could not start: " + err.Error()}
			break
		}
		cmds[r] = cmd
		go func(r int, cmd *exec.Cmd) {
			err := cmd.Wait()
			done <- result{rank: r, pid: cmd.Process.Pid, err: err}
		}(r, cmd)
	}

	started := 0
	for _, cmd := range cmds {
		if cmd != nil {
			started++
		}
	}
	var first error = startErr
	stopping := startErr != nil
	var killTimer <-chan time.Time
	exited := make([]bool, c.NProc) // touched only by this goroutine
	stop := func() {
		if stopping {
			return
		}
		stopping = true
		for r, cmd := range cmds {
			if cmd != nil && !exited[r] {
				_ = cmd.Process.Signal(syscall.SIGTERM)
			}
		}
		killTimer = time.After(c.Grace)
	}
	if stopping {
		stopping = false
		stop()
	}
	ctxDone := ctx.Done()
	var signalled *SignalError
	for remaining := started; remaining > 0; {
		select {
		case sig := <-sigs:
			if signalled == nil {
				signalled = &SignalError{Signal: sig}
			}
			for r, cmd := range cmds {
				if cmd != nil && !exited[r] {
					_ = cmd.Process.Signal(sig)
				}
			}
		case res := <-done:
			remaining--
			exited[res.rank] = true
			if res.err != nil && signalled != nil {
				// stopping workers exit non-zero; each stops on its own, after the agreed step
				signalled.Failed = append(signalled.Failed, fmt.Sprintf("rank %d: %v", res.rank, res.err))
			} else if res.err != nil && first == nil {
				first = &WorkerError{Rank: res.rank, Pid: res.pid, Status: res.err.Error()}
				stop()
			}
		case <-ctxDone:
			ctxDone = nil
			if first == nil {
				first = fmt.Errorf("dist: spawn: %w; the workers were stopped", ctx.Err())
			}
			stop()
		case <-killTimer:
			killTimer = nil
			for r, cmd := range cmds {
				if cmd != nil && !exited[r] {
					_ = cmd.Process.Kill()
				}
			}
		}
	}
	for _, w := range writers {
		w.Flush()
	}
	if first == nil && signalled != nil {
		return signalled
	}
	return first
}

// launchKeys are the variables a launcher sets for its workers; Spawn drops inherited ones (a launch
// inside a torchrun job must not inherit the outer job's place).
var launchKeys = []string{"RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK",
	"MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_USE_AGENT_STORE", "TORCHELASTIC_RESTART_COUNT", "TORCHELASTIC_RUN_ID",
	StoreFileVar}

// FreePort asks the kernel for a free TCP port on the loopback interface.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func withoutKeys(env []string, keys ...string) []string {
	out := env[:0:0]
outer:
	for _, kv := range env {
		for _, k := range keys {
			if strings.HasPrefix(kv, k+"=") {
				continue outer
			}
		}
		out = append(out, kv)
	}
	return out
}

// prefixWriter forwards whole lines with a rank prefix, so that workers' lines never interleave.
type prefixWriter struct {
	prefix string
	w      io.Writer
	mu     *sync.Mutex
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		p.emit(p.buf[:i+1])
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}

// Flush writes a last line that had no newline.
func (p *prefixWriter) Flush() {
	if len(p.buf) > 0 {
		p.emit(append(p.buf, '\n'))
		p.buf = nil
	}
}

func (p *prefixWriter) emit(line []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = io.WriteString(p.w, p.prefix)
	_, _ = p.w.Write(line)
}
