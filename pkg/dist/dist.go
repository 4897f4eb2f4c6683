// Package dist is spreadtrain's data-parallel runtime: one process per device, a c10d process group
// (Gloo for CPU tensors, NCCL for CUDA tensors) met through a rendezvous store, configured by the
// variables torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT, ...). Spawn is a
// local launcher that sets them; its workers meet through a FileStore and talk over the loopback
// interface only.
//
// A training step with a contrastive loss over the global batch:
//
//	g, err := dist.InitFromEnv(dist.WithTimeout(time.Minute))
//	defer g.Close()
//	g.BroadcastParameters(params, 0)                 // identical start
//	z := model.Forward(xLocal)                       // [n_local, V, D]
//	zAll, err := g.AllGatherWithGrad(z)              // [W*n_local, V, D], gradient flows back
//	loss := supcon.SupCon(supcon.Views{Z: zAll, Labels: yAll,
//	        AnchorStart: g.Rank()*n_local, AnchorCount: n_local}, tau, denom)
//	loss.Backward()                                  // a collective: every rank runs it
//	bytes, err := g.AllReduceGradients(params)       // mean over ranks
//	opt.Step(lr)
//
// With every rank holding the same number of anchors (each with a positive), this reproduces the
// single-process step on the global batch exactly (up to float rounding): see AllGatherWithGrad.
//
// Failures: every Gloo collective waits at most the timeout and returns an error when a peer died or
// stalled; the group is unusable afterwards, and the process should exit. NCCL collectives do not
// wait on the host: NCCL's watchdog aborts the process when one takes longer than the timeout. loss.Backward() runs the
// all-gather's backward all-reduce, so a failure there surfaces as a *torch.Error panic from
// Backward (recover it with torch.Catch).
package dist

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// DefaultTimeout bounds the rendezvous and every collective unless WithTimeout says otherwise.
const DefaultTimeout = 5 * time.Minute

// DefaultBucketBytes is the all-reduce bucket size (PyTorch DDP's default, 25 MiB).
const DefaultBucketBytes = 25 << 20

// Env is the process's place in the job, as torchrun (or Spawn) describes it.
type Env struct {
	Rank, WorldSize, LocalRank int
	MasterAddr                 string
	MasterPort                 int
	// LocalWorldSize is the number of processes on this machine (LOCAL_WORLD_SIZE; 0 when unset);
	// GroupRank is this machine's index among the job's machines (GROUP_RANK), RoleRank the rank
	// among the processes of this role (ROLE_RANK; spreadtrain runs a single role).
	LocalWorldSize, GroupRank, RoleRank int
	// AgentStore: torchrun's agent hosts the store at MasterAddr:MasterPort
	// (TORCHELASTIC_USE_AGENT_STORE=True); every rank connects to it as a client.
	AgentStore bool
	// RestartCount is how often torchrun restarted the workers (TORCHELASTIC_RESTART_COUNT); RunID
	// names the job (TORCHELASTIC_RUN_ID).
	RestartCount int
	RunID        string
	// StoreFile: Spawn's single-machine rendezvous, a FileStore in a private folder
	// (SPREADTRAIN_STORE_FILE), so that the store opens no socket.
	StoreFile string
}

// StoreFileVar names the FileStore path Spawn hands its workers.
const StoreFileVar = "SPREADTRAIN_STORE_FILE"

// Distributed reports whether the job has more than one process.
func (e Env) Distributed() bool { return e.WorldSize > 1 }

// Restarted reports whether torchrun restarted the workers of this job at least once.
func (e Env) Restarted() bool { return e.RestartCount > 0 }

// ReadEnv parses RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK, ROLE_RANK, MASTER_ADDR,
// MASTER_PORT, torchrun's TORCHELASTIC_* and Spawn's SPREADTRAIN_STORE_FILE. WORLD_SIZE unset or 1 is
// a single process (the rest may be absent). LOCAL_RANK may be left out only where the job is
// visibly on one machine (it then equals RANK); on several machines it is required.
func ReadEnv() (Env, error) { return parseEnv(os.LookupEnv) }

func parseEnv(lookup func(string) (string, bool)) (Env, error) {
	e := Env{WorldSize: 1}
	num := func(key string, min int) (int, bool, error) {
		s, ok := lookup(key)
		if !ok || strings.TrimSpace(s) == "" {
			return 0, false, nil
		}
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || v < min {
			return 0, true, fmt.Errorf("dist: %s=%q: want an integer >= %d", key, s, min)
		}
		return v, true, nil
	}
	var err error
	var ok bool
	if e.WorldSize, ok, err = num("WORLD_SIZE", 1); err != nil {
		return Env{}, err
	} else if !ok {
		e.WorldSize = 1
	}
	if e.Rank, _, err = num("RANK", 0); err != nil {
		return Env{}, err
	}
	if e.Rank >= e.WorldSize {
		return Env{}, fmt.Errorf("dist: RANK=%d is not below WORLD_SIZE=%d", e.Rank, e.WorldSize)
	}
	if e.LocalWorldSize, _, err = num("LOCAL_WORLD_SIZE", 1); err != nil {
		return Env{}, err
	}
	if e.GroupRank, _, err = num("GROUP_RANK", 0); err != nil {
		return Env{}, err
	}
	if e.RoleRank, _, err = num("ROLE_RANK", 0); err != nil {
		return Env{}, err
	}
	if e.RestartCount, _, err = num("TORCHELASTIC_RESTART_COUNT", 0); err != nil {
		return Env{}, err
	}
	run, _ := lookup("TORCHELASTIC_RUN_ID")
	e.RunID = strings.TrimSpace(run)
	agent, _ := lookup("TORCHELASTIC_USE_AGENT_STORE")
	e.AgentStore = agent == "True" // torchrun writes Python's str(True)
	file, _ := lookup(StoreFileVar)
	e.StoreFile = strings.TrimSpace(file)
	if e.LocalRank, ok, err = num("LOCAL_RANK", 0); err != nil {
		return Env{}, err
	} else if !ok {
		// RANK is the local rank only on one machine; a CUDA device picked from RANK on the second
		// machine would not exist (or be another process's)
		if (e.LocalWorldSize > 0 && e.LocalWorldSize < e.WorldSize) || e.GroupRank > 0 {
			return Env{}, fmt.Errorf("dist: LOCAL_RANK is not set on a job of several machines (WORLD_SIZE=%d, LOCAL_WORLD_SIZE=%d, GROUP_RANK=%d): "+
				"set it to this process's index on its machine (torchrun sets it; under Slurm use LOCAL_RANK=$SLURM_LOCALID)",
				e.WorldSize, e.LocalWorldSize, e.GroupRank)
		}
		e.LocalRank = e.Rank
	}
	if e.LocalWorldSize > 0 && e.LocalRank >= e.LocalWorldSize {
		return Env{}, fmt.Errorf("dist: LOCAL_RANK=%d is not below LOCAL_WORLD_SIZE=%d", e.LocalRank, e.LocalWorldSize)
	}
	if !e.Distributed() {
		return e, nil
	}
	addr, _ := lookup("MASTER_ADDR")
	e.MasterAddr = strings.TrimSpace(addr)
	if e.StoreFile != "" { // Spawn's single-machine job: no TCP rendezvous
		return e, nil
	}
	if e.MasterAddr == "" {
		return Env{}, fmt.Errorf("dist: WORLD_SIZE=%d but MASTER_ADDR is not set (the address of rank 0's host)", e.WorldSize)
	}
	if e.MasterPort, ok, err = num("MASTER_PORT", 1); err != nil {
		return Env{}, err
	} else if !ok {
		return Env{}, fmt.Errorf("dist: WORLD_SIZE=%d but MASTER_PORT is not set (a free TCP port on rank 0's host)", e.WorldSize)
	}
	if e.MasterPort > 65535 {
		return Env{}, fmt.Errorf("dist: MASTER_PORT=%d: want a TCP port in 1..65535", e.MasterPort)
	}
	return e, nil
}

// Options configure a Group.
type Options struct {
	Timeout     time.Duration // rendezvous and per-collective limit (DefaultTimeout when 0)
	Backend     string        // "gloo" or "nccl"; "" picks nccl for a CUDA device, gloo otherwise
	Device      torch.Device  // this rank's device (NCCL uses its index)
	BucketBytes int64         // all-reduce/broadcast bucket size (DefaultBucketBytes when 0)
	GlooHost    string        // address Gloo binds; "" = 127.0.0.1 for a loopback master, else $GLOO_SOCKET_IFNAME or the hostname's address
}

// Option changes Options.
type Option func(*Options)

// WithTimeout bounds the rendezvous and every collective.
func WithTimeout(d time.Duration) Option { return func(o *Options) { o.Timeout = d } }

// WithBackend forces "gloo" or "nccl".
func WithBackend(name string) Option { return func(o *Options) { o.Backend = name } }

// WithDevice names this rank's device (e.g. torch.CUDA(env.LocalRank)).
func WithDevice(d torch.Device) Option { return func(o *Options) { o.Device = d } }

// WithBucketBytes sets the all-reduce bucket size.
func WithBucketBytes(n int64) Option { return func(o *Options) { o.BucketBytes = n } }

// WithGlooHost sets the address Gloo binds on this host.
func WithGlooHost(h string) Option { return func(o *Options) { o.GlooHost = h } }

// Group is this process's membership in the job. With one process it exists too, and every
// collective is the identity, so the trainer has a single code path.
type Group struct {
	env    Env
	opts   Options
	store  *torch.Store
	pg     *torch.ProcessGroup
	stopAt int // the agreed stop step (StopAt); -1 until one is known
}

// InitFromEnv reads torchrun's variables and, for more than one process, joins the group (rank 0
// hosts the store). It blocks until every rank has joined or the timeout passes.
func InitFromEnv(opts ...Option) (*Group, error) {
	env, err := ReadEnv()
	if err != nil {
		return nil, err
	}
	return Init(env, opts...)
}

// Init joins the group env describes.
func Init(env Env, opts ...Option) (*Group, error) {
	o := Options{Timeout: DefaultTimeout, BucketBytes: DefaultBucketBytes, Device: torch.CPU}
	for _, f := range opts {
		f(&o)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.BucketBytes <= 0 {
		o.BucketBytes = DefaultBucketBytes
	}
	if o.Backend == "" {
		o.Backend = "gloo"
		if o.Device.Type == torch.CUDADevice {
			o.Backend = "nccl"
		}
	}
	if o.Backend != "gloo" && o.Backend != "nccl" {
		return nil, fmt.Errorf("dist: backend %q: want gloo or nccl", o.Backend)
	}
	g := &Group{env: env, opts: o, stopAt: -1}
	if !env.Distributed() {
		return g, nil
	}
	if !hasBackend(o.Backend) {
		return nil, fmt.Errorf("dist: the %s backend is not in this shim (libtorch %s has %v); rebuild with make shim against a libtorch that has it",
			o.Backend, torch.Version(), torch.DistBackends())
	}
	if o.GlooHost == "" && o.Backend == "gloo" && (env.StoreFile != "" || isLoopback(env.MasterAddr)) {
		o.GlooHost = "127.0.0.1"
		g.opts.GlooHost = o.GlooHost
	}
	store, err := rendezvous(env, o.Timeout)
	if err != nil {
		return nil, fmt.Errorf("dist: rank %d: %w", env.Rank, err)
	}
	pg, err := torch.NewProcessGroup(store, o.Backend, env.Rank, env.WorldSize, o.Timeout, o.GlooHost, o.Device.Index)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("dist: rank %d: %s process group of %d: %w", env.Rank, o.Backend, env.WorldSize, err)
	}
	g.store, g.pg = store, pg
	return g, nil
}

// rendezvous opens the store the ranks meet through: Spawn's FileStore on one machine; under torchrun
// the agent's TCPStore, with the key prefix torch.distributed's env:// rendezvous uses
// ("/worker/attempt_<restart count>", so that a restarted job never reads its last attempt's keys);
// otherwise a TCPStore hosted by rank 0 at MASTER_ADDR:MASTER_PORT.
func rendezvous(env Env, timeout time.Duration) (*torch.Store, error) {
	switch {
	case env.StoreFile != "":
		s, err := torch.NewFileStore(env.StoreFile, env.WorldSize, timeout)
		if err != nil {
			return nil, fmt.Errorf("rendezvous in %s: %w", env.StoreFile, err)
		}
		return s, nil
	case env.AgentStore:
		agent, err := torch.NewTCPStore(env.MasterAddr, env.MasterPort, false, env.WorldSize, timeout)
		if err != nil {
			return nil, fmt.Errorf("rendezvous at torchrun's agent store %s:%d: %w", env.MasterAddr, env.MasterPort, err)
		}
		s, err := agent.Prefixed(fmt.Sprintf("/worker/attempt_%d", env.RestartCount))
		if err != nil {
			agent.Close()
			return nil, err
		}
		return s, nil
	default:
		if env.Rank == 0 && torch.StoreTakesSocket() {
			fd, port, ok, err := masterListener(env)
			if err != nil {
				return nil, fmt.Errorf("rendezvous at %s:%d: %w", env.MasterAddr, env.MasterPort, err)
			}
			if ok {
				s, err := torch.NewTCPStoreOn(env.MasterAddr, fd, port, env.WorldSize, timeout)
				if err != nil {
					return nil, fmt.Errorf("rendezvous at %s:%d: %w", env.MasterAddr, port, err)
				}
				return s, nil
			}
		}
		s, err := torch.NewTCPStore(env.MasterAddr, env.MasterPort, env.Rank == 0, env.WorldSize, timeout)
		if err != nil {
			return nil, fmt.Errorf("rendezvous at %s:%d: %w", env.MasterAddr, env.MasterPort, err)
		}
		return s, nil
	}
}

// masterListener binds rank 0's store socket where MASTER_ADDR says (the store is unauthenticated, so
// it should not listen on every interface) and returns a close-on-exec descriptor of it for the store
// to take over, with the port it got (MASTER_PORT 0 picks one). A MASTER_ADDR given as a name that
// resolves to a loopback address, on a job that may span machines (LOCAL_WORLD_SIZE below WORLD_SIZE,
// or unset), would shut the other machines out (Debian maps the hostname to 127.0.1.1): ok is false
// there, and the store listens on every interface as libtorch's own does.
func masterListener(env Env) (fd, port int, ok bool, err error) {
	addr, err := net.ResolveTCPAddr("tcp", net.JoinHostPort(env.MasterAddr, strconv.Itoa(env.MasterPort)))
	if err != nil {
		return 0, 0, false, fmt.Errorf("MASTER_ADDR: %w", err)
	}
	oneMachine := env.LocalWorldSize > 0 && env.LocalWorldSize >= env.WorldSize
	if addr.IP.IsLoopback() && net.ParseIP(env.MasterAddr) == nil && !oneMachine {
		return 0, 0, false, nil
	}
	l, err := net.ListenTCP("tcp", addr)
	if err != nil {
		return 0, 0, false, err
	}
	defer l.Close()
	f, err := l.File() // a duplicate, in blocking mode
	if err != nil {
		return 0, 0, false, err
	}
	defer f.Close()
	dup, _, errno := syscall.Syscall(syscall.SYS_FCNTL, f.Fd(), syscall.F_DUPFD_CLOEXEC, 0)
	if errno != 0 {
		return 0, 0, false, fmt.Errorf("dup of the store socket: %w", errno)
	}
	return int(dup), l.Addr().(*net.TCPAddr).Port, true, nil
}

// stopKey holds the step count at which every rank stops (see StopAt).
const stopKey = "spreadtrain/stop_at"

// StopAt tells a training loop, called at the top of every step with the steps it has completed and
// whether this process was asked to stop (a signal), whether to stop now. Ranks signalled at slightly
// different moments must still stop after the same step, or one would wait in a collective for a
// peer that has left: the first rank asked proposes completed+1 in the store (compare-and-set, so the
// first proposal wins) and every rank reads the key once per step. A rank is never more than one step
// ahead of another (the collectives of each step hold it back), so completed+1 is still ahead of all.
// With one process it returns stop.
func (g *Group) StopAt(completed int, stop bool) (bool, error) {
	if !g.Distributed() || g.store == nil {
		return stop, nil
	}
	if g.stopAt < 0 {
		var val string
		if stop {
			v, err := g.store.CompareSet(stopKey, "", strconv.Itoa(completed+1))
			if err != nil {
				return false, fmt.Errorf("dist: rank %d: proposing to stop: %w", g.env.Rank, err)
			}
			val = v
		} else if set, err := g.store.Check(stopKey); err != nil {
			return false, fmt.Errorf("dist: rank %d: checking for a stop: %w", g.env.Rank, err)
		} else if set {
			// a read: an expected value no proposal writes leaves the key as it is
			if val, err = g.store.CompareSet(stopKey, "-", "-"); err != nil {
				return false, fmt.Errorf("dist: rank %d: reading the stop step: %w", g.env.Rank, err)
			}
		}
		if val != "" {
			n, err := strconv.Atoi(val)
			if err != nil {
				return false, fmt.Errorf("dist: rank %d: the store's %s holds %q, not a step", g.env.Rank, stopKey, val)
			}
			g.stopAt = n
		}
	}
	return g.stopAt >= 0 && completed >= g.stopAt, nil
}

func hasBackend(name string) bool {
	for _, b := range torch.DistBackends() {
		if b == name {
			return true
		}
	}
	return false
}

func isLoopback(addr string) bool {
	return addr == "localhost" || addr == "::1" || strings.HasPrefix(addr, "127.")
}

// Rank is this process's rank in [0, WorldSize).
func (g *Group) Rank() int { return g.env.Rank }

// WorldSize is the number of processes.
func (g *Group) WorldSize() int { return g.env.WorldSize }

// LocalRank is the rank on this host (the CUDA device index to use).
func (g *Group) LocalRank() int { return g.env.LocalRank }

// Distributed reports whether there is more than one process.
func (g *Group) Distributed() bool { return g.env.Distributed() }

// Backend is "gloo" or "nccl".
func (g *Group) Backend() string { return g.opts.Backend }

// Timeout is the per-collective limit.
func (g *Group) Timeout() time.Duration { return g.opts.Timeout }

// CollectiveError is a failed collective. After one the group is unusable: close it and exit.
type CollectiveError struct {
	Op          string
	Rank, World int
	Timeout     time.Duration
	Err         error // the shim's error (*torch.Error)
}

func (e *CollectiveError) Error() string {
	msg := e.Err.Error()
	var te *torch.Error
	if errors.As(e.Err, &te) {
		msg = te.Msg
	}
	if !strings.Contains(msg, "on rank") {
		msg = fmt.Sprintf("%s on rank %d/%d: %s", e.Op, e.Rank, e.World, msg)
	}
	// the hint helps with transport failures, not with misuse such as mismatched shapes
	if !strings.Contains(msg, "must match") && !strings.Contains(msg, "tensor") {
		msg += fmt.Sprintf(" (a peer process may have died, or the %v timeout passed)", e.Timeout)
	}
	return "dist: " + msg
}

func (e *CollectiveError) Unwrap() error { return e.Err }

func (g *Group) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return &CollectiveError{Op: op, Rank: g.env.Rank, World: g.env.WorldSize, Timeout: g.opts.Timeout, Err: err}
}

func (g *Group) live() error {
	if g.Distributed() && g.pg == nil {
		return errors.New("dist: use of a closed group")
	}
	return nil
}

// AllReduceMean replaces each tensor in place by its mean over ranks, in buckets; it returns the
// payload bytes all-reduced by this rank (a ring all-reduce sends about 2(W-1)/W times that per rank).
func (g *Group) AllReduceMean(ts []*torch.Tensor) (int64, error) {
	return g.allReduce(ts, true)
}

// AllReduceSum replaces each tensor in place by its sum over ranks.
func (g *Group) AllReduceSum(ts []*torch.Tensor) (int64, error) {
	return g.allReduce(ts, false)
}

func (g *Group) allReduce(ts []*torch.Tensor, mean bool) (int64, error) {
	if err := g.live(); err != nil || !g.Distributed() {
		return 0, err
	}
	n, err := g.pg.AllReduce(ts, mean, g.opts.BucketBytes)
	return n, g.wrap("all_reduce", err)
}

// AllReduceGradients averages the parameters' gradients over ranks (DDP's step). Every parameter
// must have a gradient on every rank.
func (g *Group) AllReduceGradients(params []torch.Named) (int64, error) {
	if !g.Distributed() {
		return 0, nil
	}
	grads := make([]*torch.Tensor, len(params))
	for i, p := range params {
		if grads[i] = p.Tensor.Grad(); grads[i] == nil {
			return 0, fmt.Errorf("dist: rank %d: parameter %s has no gradient (every rank must use every parameter)", g.env.Rank, p.Name)
		}
	}
	defer func() {
		for _, t := range grads {
			t.Free()
		}
	}()
	return g.AllReduceMean(grads)
}

// Broadcast overwrites the tensors in place with root's values (outside autograd, so parameters
// may be passed directly).
func (g *Group) Broadcast(ts []*torch.Tensor, root int) error {
	if err := g.live(); err != nil || !g.Distributed() {
		return err
	}
	if root < 0 || root >= g.env.WorldSize {
		return fmt.Errorf("dist: broadcast root %d outside world size %d", root, g.env.WorldSize)
	}
	return g.wrap("broadcast", g.pg.Broadcast(ts, root, g.opts.BucketBytes))
}

// BroadcastParameters copies root's parameters (and any buffers passed) to every rank.
func (g *Group) BroadcastParameters(params []torch.Named, root int) error {
	ts := make([]*torch.Tensor, len(params))
	for i, p := range params {
		ts[i] = p.Tensor
	}
	return g.Broadcast(ts, root)
}

// AllGather concatenates every rank's t along dimension 0, in rank order, without gradient. Row
// counts may differ between ranks; the other dimensions and the dtype must match. With one process
// it returns t itself.
func (g *Group) AllGather(t *torch.Tensor) (*torch.Tensor, error) {
	if err := g.live(); err != nil || !g.Distributed() {
		return t, err
	}
	out, err := g.pg.AllGather(t)
	return out, g.wrap("all_gather", err)
}

// AllGatherWithGrad is AllGather recorded by autograd. Its backward sums the gathered gradient over
// ranks and returns this rank's rows. Sum, not mean, is right when each rank's loss is the mean over
// its own anchors and gradients are then averaged over ranks (AllReduceMean): with
// L = (1/W) sum_r L_r, rank s receives sum_r dL_r/dZ_s = W dL/dZ_s, and the mean over ranks divides
// the W out again, giving exactly dL/dtheta (TestAllGatherWithGrad and TestTrainMatchesSingleProcess
// check it). Backward is a collective: every rank must call it.
func (g *Group) AllGatherWithGrad(t *torch.Tensor) (*torch.Tensor, error) {
	if err := g.live(); err != nil || !g.Distributed() {
		return t, err
	}
	out, err := g.pg.AllGatherWithGrad(t)
	return out, g.wrap("all_gather", err)
}

// Barrier returns once every rank has reached it.
func (g *Group) Barrier() error {
	if err := g.live(); err != nil || !g.Distributed() {
		return err
	}
	return g.wrap("barrier", g.pg.Barrier())
}

// Close leaves the group and stops the store (on rank 0). Safe to call twice.
func (g *Group) Close() error {
	if g.pg != nil {
		g.pg.Close()
		g.pg = nil
	}
	if g.store != nil {
		g.store.Close()
		g.store = nil
	}
	return nil
}
