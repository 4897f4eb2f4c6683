package data

import (
	"encoding/json"
	"fmt"
	"math/bits"
	"math/rand/v2"
)

// SamplerOptions configure the order in which a training set is visited.
type SamplerOptions struct {
	BatchSize int    // per rank
	DropLast  bool   // leave out each epoch's last, smaller batch
	Seed      uint64 // the same seed visits the same batches, on every run and every rank
	// Rank and World shard each epoch for data-parallel training: every rank draws the same epoch
	// permutation and takes every World-th entry from Rank on, so shards are disjoint and equal in size
	// (the N mod World entries at the permutation's end sit the epoch out, different ones each epoch).
	// World 0 or 1 is one process.
	Rank, World int
}

// SamplerState is where a Sampler stands; a checkpoint stores it to resume with identical batches.
type SamplerState struct {
	N         int    `json:"n" yaml:"n"`
	BatchSize int    `json:"batch_size" yaml:"batch_size"`
	DropLast  bool   `json:"drop_last" yaml:"drop_last"`
	Seed      uint64 `json:"seed" yaml:"seed"`
	Rank      int    `json:"rank" yaml:"rank"`
	World     int    `json:"world" yaml:"world"`
	Epoch     int    `json:"epoch" yaml:"epoch"`       // 0-based epoch being served
	Pos       int    `json:"position" yaml:"position"` // batches of that epoch already served
}

// Sampler yields batches of dataset indices, epoch after epoch. Epoch e's permutation comes from a PCG
// generator seeded with (Seed, e) and our own Fisher-Yates, so it depends on nothing but the seed and
// the epoch (not on the Go version's math/rand algorithms, nor on the batches served before).
type Sampler struct {
	st    SamplerState
	shard []int64 // this rank's share of the current epoch's permutation
}

// NewSampler visits n samples.
func NewSampler(n int, o SamplerOptions) (*Sampler, error) {
	s := &Sampler{}
	if err := s.Restore(SamplerState{N: n, BatchSize: o.BatchSize, DropLast: o.DropLast, Seed: o.Seed,
		Rank: o.Rank, World: o.World}); err != nil {
		return nil, err
	}
	return s, nil
}

func (st SamplerState) check() error {
	world := max(st.World, 1)
	switch {
	case st.N < 0:
		return fmt.Errorf("sampler: %d samples", st.N)
	case st.BatchSize <= 0:
		return fmt.Errorf("sampler: batch size %d must be positive", st.BatchSize)
	case st.World < 0 || st.Rank < 0 || st.Rank >= world:
		return fmt.Errorf("sampler: rank %d of world size %d", st.Rank, st.World)
	case st.Epoch < 0 || st.Pos < 0:
		return fmt.Errorf("sampler: epoch %d position %d", st.Epoch, st.Pos)
	}
	return nil
}

// ShardSize is the number of samples each rank sees per epoch.
func (s *Sampler) ShardSize() int { return s.st.N / max(s.st.World, 1) }

// StepsPerEpoch is the number of batches per epoch (the same on every rank).
func (s *Sampler) StepsPerEpoch() int {
	m := s.ShardSize()
	if s.st.DropLast {
		return m / s.st.BatchSize
	}
	return (m + s.st.BatchSize - 1) / s.st.BatchSize
}

// Epoch is the 0-based epoch being served; Position the batches of it served so far.
func (s *Sampler) Epoch() int    { return s.st.Epoch }
func (s *Sampler) Position() int { return s.st.Pos }

// State is the sampler's position, to store in a checkpoint.
func (s *Sampler) State() SamplerState { return s.st }

// Restore continues from a stored state. The state's N must match the dataset's.
func (s *Sampler) Restore(st SamplerState) error {
	if err := st.check(); err != nil {
		return err
	}
	if steps := (&Sampler{st: st}).StepsPerEpoch(); st.Pos > steps {
		return fmt.Errorf("sampler: position %d past the epoch's %d batches", st.Pos, steps)
	}
	s.st, s.shard = st, nil
	return nil
}

// MarshalBinary encodes the state (JSON).
func (s *Sampler) MarshalBinary() ([]byte, error) { return json.Marshal(s.st) }

// UnmarshalBinary restores a state written by MarshalBinary.
func (s *Sampler) UnmarshalBinary(b []byte) error {
	var st SamplerState
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("sampler state: %w", err)
	}
	return s.Restore(st)
}

// Next returns the next batch of indices. At the end of an epoch it returns ok = false once, and the
// call after that starts the next epoch.
func (s *Sampler) Next() (idx []int64, ok bool) {
	if s.st.Pos >= s.StepsPerEpoch() {
		s.st.Epoch++
		s.st.Pos = 0
		s.shard = nil
		return nil, false
	}
	if s.shard == nil {
		s.shard = EpochShard(s.st.N, s.st.Seed, s.st.Epoch, s.st.Rank, s.st.World)
	}
	lo := s.st.Pos * s.st.BatchSize
	hi := min(lo+s.st.BatchSize, len(s.shard))
	s.st.Pos++
	return append([]int64(nil), s.shard[lo:hi]...), true
}

// EpochPermutation is epoch's permutation of 0..n-1 for a seed.
func EpochPermutation(n int, seed uint64, epoch int) []int64 {
	r := rand.NewPCG(seed, uint64(epoch))
	p := make([]int64, n)
	for i := range p {
		p[i] = int64(i)
	}
	for i := n - 1; i > 0; i-- {
		j := boundedPCG(r, uint64(i+1))
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// boundedPCG is uniform in [0, n) (Lemire's multiply-and-reject), fixed here so that permutations stay
// the same across Go releases.
func boundedPCG(r *rand.PCG, n uint64) uint64 {
	hi, lo := bits.Mul64(r.Uint64(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(r.Uint64(), n)
		}
	}
	return hi
}

// EpochShard is rank's share of epoch's permutation: entries rank, rank+world, ... of its first
// world*(n/world) entries.
func EpochShard(n int, seed uint64, epoch, rank, world int) []int64 {
	p := EpochPermutation(n, seed, epoch)
	world = max(world, 1)
	m := n / world
	out := make([]int64, m)
	for i := range out {
		out[i] = p[i*world+rank]
	}
	return out
}
