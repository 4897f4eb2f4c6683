package torch

// #include <stdlib.h>
// #include "spreadtorch.h"
import "C"

import (
	"errors"
	"runtime"
	"strings"
	"time"
	"unsafe"
)

// This file is the thin binding of the shim's c10d layer (cgo/dist.cpp); pkg/dist builds the API
// the trainer uses on top of it. Unlike tensor ops these return errors: a dead peer or a timeout
// is an expected outcome of a collective, not a programming error.

func distErr(err C.st_err, op string) error {
	if err == nil {
		return nil
	}
	msg := C.GoString(err)
	C.st_free_err(err)
	return &Error{Op: op, Msg: strings.TrimSpace(msg)}
}

// DistBackends lists the collective backends the shim was compiled with ("gloo", "nccl").
func DistBackends() []string {
	m := C.st_dist_backends()
	var out []string
	if m&C.ST_DIST_GLOO != 0 {
		out = append(out, "gloo")
	}
	if m&C.ST_DIST_NCCL != 0 {
		out = append(out, "nccl")
	}
	return out
}

// Store is a c10d store (TCPStore, FileStore or a prefixed view of one): the rendezvous the ranks of
// a process group meet through.
type Store struct {
	h    C.st_store
	base *Store // a prefixed view keeps the store it wraps alive
}

// NewTCPStore starts the store on the master (which waits for world ranks to connect) or connects a
// client to it; both give up after timeout. Port 0 on the master picks a free port (see Port).
func NewTCPStore(host string, port int, master bool, world int, timeout time.Duration) (*Store, error) {
	ch := C.CString(host)
	defer C.free(unsafe.Pointer(ch))
	var h C.st_store
	if err := distErr(C.st_dist_store_new(ch, C.int(port), cbool(master), C.int(world), C.int64_t(timeout.Milliseconds()), &h), "tcp_store"); err != nil {
		return nil, err
	}
	s := &Store{h: h}
	runtime.SetFinalizer(s, (*Store).Close)
	return s, nil
}

// StoreTakesSocket reports whether this libtorch can serve a TCPStore on a socket the caller bound
// (libtorch >= 2.4; 1.13's master listens on every interface).
func StoreTakesSocket() bool { return C.st_dist_store_takes_socket() != 0 }

// NewTCPStoreOn starts the master store on listenFD, a socket bound to host:port and listening; the
// store takes the descriptor over (it closes it). It waits for world ranks to connect, up to timeout.
func NewTCPStoreOn(host string, listenFD, port, world int, timeout time.Duration) (*Store, error) {
	ch := C.CString(host)
	defer C.free(unsafe.Pointer(ch))
	var h C.st_store
	if err := distErr(C.st_dist_store_new_on(ch, C.int(listenFD), C.int(port), C.int(world), C.int64_t(timeout.Milliseconds()), &h), "tcp_store"); err != nil {
		return nil, err
	}
	s := &Store{h: h}
	runtime.SetFinalizer(s, (*Store).Close)
	return s, nil
}

// NewFileStore opens a store kept in the file at path, shared by the world ranks of one machine
// (no socket); waits for keys give up after timeout. The last rank to close it deletes the file.
func NewFileStore(path string, world int, timeout time.Duration) (*Store, error) {
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	var h C.st_store
	if err := distErr(C.st_dist_file_store_new(cp, C.int(world), C.int64_t(timeout.Milliseconds()), &h), "file_store"); err != nil {
		return nil, err
	}
	s := &Store{h: h}
	runtime.SetFinalizer(s, (*Store).Close)
	return s, nil
}

// Prefixed is a view of s whose keys all start with prefix. The view owns s: closing it closes s.
func (s *Store) Prefixed(prefix string) (*Store, error) {
	cp := C.CString(prefix)
	defer C.free(unsafe.Pointer(cp))
	var h C.st_store
	err := distErr(C.st_dist_store_prefix(s.h, cp, &h), "prefix_store")
	runtime.KeepAlive(s)
	if err != nil {
		return nil, err
	}
	p := &Store{h: h, base: s}
	runtime.SetFinalizer(p, (*Store).Close)
	return p, nil
}

// Port is the port a TCPStore listens on (or connected to); -1 for the other kinds.
func (s *Store) Port() int {
	p := int(C.st_dist_store_port(s.h))
	runtime.KeepAlive(s)
	return p
}

// Check reports whether key is set, without waiting.
func (s *Store) Check(key string) (bool, error) {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var present C.int
	err := distErr(C.st_dist_store_check(s.h, ck, &present), "store check")
	runtime.KeepAlive(s)
	return present != 0, err
}

// CompareSet sets key to desired if it holds expected ("" = unset), atomically, and returns the
// value the key holds afterwards.
func (s *Store) CompareSet(key, expected, desired string) (string, error) {
	ck, ce, cd := C.CString(key), C.CString(expected), C.CString(desired)
	defer C.free(unsafe.Pointer(ck))
	defer C.free(unsafe.Pointer(ce))
	defer C.free(unsafe.Pointer(cd))
	var out *C.char
	err := distErr(C.st_dist_store_compare_set(s.h, ck, ce, cd, &out), "store compare_set")
	runtime.KeepAlive(s)
	if err != nil {
		return "", err
	}
	v := C.GoString(out)
	C.st_free_err(out)
	return v, nil
}

// Close releases the store (a TCPStore master stops serving), and the store a prefixed view wraps.
func (s *Store) Close() {
	if s != nil && s.h != nil {
		C.st_dist_store_free(s.h)
		s.h = nil
		s.base.Close()
	}
}

// SetCUDADevice makes CUDA device index the current device of the calling OS thread (the one a
// locked training goroutine runs on), so that nothing lands on GPU 0 by default.
func SetCUDADevice(index int) error {
	return distErr(C.st_dist_cuda_set_device(C.int(index)), "cuda set_device")
}

// ProcessGroup is a c10d Gloo or NCCL process group. Its collectives block until done, failing
// after the group's timeout; after a failure the group is unusable.
type ProcessGroup struct {
	h     C.st_pg
	store *Store // kept alive as long as the group
}

// NewProcessGroup joins rank to a group of world ranks over store. glooHost is the address Gloo
// binds ("" = $GLOO_SOCKET_IFNAME or the hostname's address); device is the CUDA index for NCCL.
func NewProcessGroup(store *Store, backend string, rank, world int, timeout time.Duration, glooHost string, device int) (*ProcessGroup, error) {
	if store == nil || store.h == nil {
		return nil, errors.New("torch: process_group: nil or closed store")
	}
	cb := C.CString(backend)
	defer C.free(unsafe.Pointer(cb))
	cg := C.CString(glooHost)
	defer C.free(unsafe.Pointer(cg))
	var h C.st_pg
	err := distErr(C.st_dist_pg_new(store.h, cb, C.int(rank), C.int(world), C.int64_t(timeout.Milliseconds()), cg, C.int(device), &h), "process_group")
	runtime.KeepAlive(store)
	if err != nil {
		return nil, err
	}
	pg := &ProcessGroup{h: h, store: store}
	runtime.SetFinalizer(pg, (*ProcessGroup).Close)
	return pg, nil
}

func (pg *ProcessGroup) handle() (C.st_pg, error) {
	if pg == nil || pg.h == nil {
		return nil, errors.New("torch: use of a closed process group")
	}
	return pg.h, nil
}

// tensorHandles is handles() returning an error instead of panicking on nil or freed tensors.
func tensorHandles(op string, ts []*Tensor) (hs []C.st_tensor, err error) {
	err = Catch(func() { hs = handles(op, ts) })
	return hs, err
}

// AllReduce sums tensors in place across ranks (then divides by the world size when average),
// packed into buckets of at most bucketBytes; it returns the bytes this rank all-reduced.
func (pg *ProcessGroup) AllReduce(ts []*Tensor, average bool, bucketBytes int64) (int64, error) {
	h, err := pg.handle()
	if err != nil || len(ts) == 0 {
		return 0, err
	}
	hs, err := tensorHandles("all_reduce", ts)
	if err != nil {
		return 0, err
	}
	var moved C.int64_t
	err = distErr(C.st_dist_all_reduce(h, handlesPtr(hs), C.int(len(hs)), cbool(average), C.int64_t(bucketBytes), &moved), "all_reduce")
	runtime.KeepAlive(ts)
	runtime.KeepAlive(pg)
	return int64(moved), err
}

// Broadcast overwrites tensors in place with root's values (outside autograd).
func (pg *ProcessGroup) Broadcast(ts []*Tensor, root int, bucketBytes int64) error {
	h, err := pg.handle()
	if err != nil || len(ts) == 0 {
		return err
	}
	hs, err := tensorHandles("broadcast", ts)
	if err != nil {
		return err
	}
	err = distErr(C.st_dist_broadcast(h, handlesPtr(hs), C.int(len(hs)), C.int(root), C.int64_t(bucketBytes)), "broadcast")
	runtime.KeepAlive(ts)
	runtime.KeepAlive(pg)
	return err
}

// AllGather concatenates every rank's t along dimension 0 (no gradient).
func (pg *ProcessGroup) AllGather(t *Tensor) (*Tensor, error) {
	return pg.gather(t, false)
}

// AllGatherWithGrad is AllGather recorded by autograd: backward sums the gathered gradient over
// ranks and hands each rank its own rows (a collective: every rank must run backward).
func (pg *ProcessGroup) AllGatherWithGrad(t *Tensor) (*Tensor, error) {
	return pg.gather(t, true)
}

func (pg *ProcessGroup) gather(t *Tensor, grad bool) (*Tensor, error) {
	h, err := pg.handle()
	if err != nil {
		return nil, err
	}
	var th C.st_tensor
	if err := Catch(func() { th = t.handle("all_gather") }); err != nil {
		return nil, err
	}
	var out C.st_tensor
	if grad {
		err = distErr(C.st_dist_all_gather_grad(h, th, &out), "all_gather")
	} else {
		err = distErr(C.st_dist_all_gather(h, th, &out), "all_gather")
	}
	runtime.KeepAlive(t)
	runtime.KeepAlive(pg)
	if err != nil {
		return nil, err
	}
	return wrap(out), nil
}

// Barrier returns once every rank has reached it.
func (pg *ProcessGroup) Barrier() error {
	h, err := pg.handle()
	if err != nil {
		return err
	}
	err = distErr(C.st_dist_barrier(h), "barrier")
	runtime.KeepAlive(pg)
	return err
}

// Close releases the group (the store is released by its own Close or the GC).
func (pg *ProcessGroup) Close() {
	if pg != nil && pg.h != nil {
		C.st_dist_pg_free(pg.h)
		pg.h = nil
	}
}
