package data

import (
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// drain collects the index batches of one epoch (until ok = false).
func drain(s *Sampler) [][]int64 {
	var out [][]int64
	for {
		idx, ok := s.Next()
		if !ok {
			return out
		}
		out = append(out, idx)
	}
}

func TestSamplerEpochsAndDropLast(t *testing.T) {
	for _, drop := range []bool{false, true} {
		s, err := NewSampler(103, SamplerOptions{BatchSize: 10, DropLast: drop, Seed: 9})
		if err != nil {
			t.Fatal(err)
		}
		wantSteps := 11
		if drop {
			wantSteps = 10
		}
		if s.StepsPerEpoch() != wantSteps {
			t.Fatalf("drop=%v: %d steps", drop, s.StepsPerEpoch())
		}
		e0, e1 := drain(s), drain(s)
		if len(e0) != wantSteps || len(e1) != wantSteps || s.Epoch() != 2 {
			t.Fatalf("drop=%v: epochs of %d and %d batches, epoch now %d", drop, len(e0), len(e1), s.Epoch())
		}
		all := slices.Concat(e0...)
		if !drop {
			if len(e0[10]) != 3 {
				t.Errorf("last batch has %d samples", len(e0[10]))
			}
			sorted := slices.Clone(all)
			slices.Sort(sorted)
			for i, v := range sorted {
				if v != int64(i) {
					t.Fatalf("epoch is not a permutation of 0..102")
				}
			}
		}
		if slices.Equal(all, slices.Concat(e1...)) {
			t.Error("two epochs in the same order")
		}
	}
	if _, err := NewSampler(10, SamplerOptions{BatchSize: 0}); err == nil {
		t.Error("batch size 0 accepted")
	}
	if _, err := NewSampler(10, SamplerOptions{BatchSize: 2, Rank: 2, World: 2}); err == nil {
		t.Error("rank 2 of 2 accepted")
	}
}

func TestSamplerShards(t *testing.T) {
	const n, world = 1001, 4
	var shards [][]int64
	steps := -1
	for r := 0; r < world; r++ {
		s, err := NewSampler(n, SamplerOptions{BatchSize: 32, Seed: 3, Rank: r, World: world})
		if err != nil {
			t.Fatal(err)
		}
		if steps >= 0 && s.StepsPerEpoch() != steps {
			t.Fatal("ranks disagree on the number of steps")
		}
		steps = s.StepsPerEpoch()
		drain(s) // epoch 0
		shards = append(shards, slices.Concat(drain(s)...))
	}
	seen := map[int64]bool{}
	for r, sh := range shards {
		if len(sh) != n/world {
			t.Fatalf("rank %d: shard of %d", r, len(sh))
		}
		for _, i := range sh {
			if seen[i] {
				t.Fatalf("index %d on two ranks", i)
			}
			seen[i] = true
		}
	}
	// the union is the epoch's permutation less its tail
	p := EpochPermutation(n, 3, 1)
	for _, i := range p[:world*(n/world)] {
		if !seen[i] {
			t.Fatalf("index %d of the permutation served by no rank", i)
		}
	}
}

func TestSamplerResume(t *testing.T) {
	opts := SamplerOptions{BatchSize: 7, Seed: 11}
	a, _ := NewSampler(50, opts)
	drain(a)
	for i := 0; i < 3; i++ {
		a.Next()
	}
	blob, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewSampler(50, SamplerOptions{BatchSize: 1})
	if err := b.UnmarshalBinary(blob); err != nil {
		t.Fatal(err)
	}
	for k := 0; k < 20; k++ {
		x, okx := a.Next()
		y, oky := b.Next()
		if okx != oky || !slices.Equal(x, y) {
			t.Fatalf("batch %d after resume differs: %v %v", k, x, y)
		}
	}
	if err := b.UnmarshalBinary([]byte(`{"n":50,"batch_size":7,"epoch":0,"position":99}`)); err == nil {
		t.Error("position past the epoch accepted")
	}
	// permutations are pinned: a change here breaks resuming old runs
	if got := EpochPermutation(8, 1, 0); !slices.Equal(got, []int64{5, 3, 1, 2, 6, 7, 0, 4}) {
		t.Errorf("EpochPermutation(8, 1, 0) = %v", got)
	}
}

func testDataset(n int) *Dataset {
	d := &Dataset{Name: "t", N: n, C: 3, H: 4, W: 5, CoarseNames: []string{"a", "b"}, FineNames: []string{"a", "b", "c"}}
	d.Pixels = make([]uint8, n*d.SampleSize())
	for i := range d.Pixels {
		d.Pixels[i] = uint8(i * 31 % 251)
	}
	for i := 0; i < n; i++ {
		d.Coarse = append(d.Coarse, int64(i%2))
		d.Fine = append(d.Fine, int64(i%3))
		d.Group = append(d.Group, int64(i%5))
	}
	return d
}

func batchSig(t *testing.T, b Batch) []int64 {
	t.Helper()
	sig := slices.Clone(b.Index)
	for _, px := range b.Images.Int64s() {
		sig = append(sig, px)
	}
	sig = append(sig, b.Coarse.Int64s()...)
	sig = append(sig, b.Fine.Int64s()...)
	return append(sig, b.Group.Int64s()...)
}

// epochSigs runs epochs of a loader and returns a signature per batch (-1 marks epoch ends).
func epochSigs(t *testing.T, l *Loader, batches int) [][]int64 {
	t.Helper()
	var out [][]int64
	for len(out) < batches {
		torch.WithScope(func() {
			b, ok, err := l.Next()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				out = append(out, []int64{-1})
				return
			}
			out = append(out, batchSig(t, b))
		})
	}
	return out
}

func TestStreamingMatchesResident(t *testing.T) {
	d := testDataset(37)
	base := runtime.NumGoroutine()
	opts := LoaderOptions{SamplerOptions: SamplerOptions{BatchSize: 8, Seed: 5}}
	res, err := NewLoader(d, torch.CPU, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	sopts := opts
	sopts.Stream, sopts.Workers, sopts.Prefetch = true, 3, 2
	str, err := NewLoader(d, torch.CPU, sopts)
	if err != nil {
		t.Fatal(err)
	}
	a, b := epochSigs(t, res, 14), epochSigs(t, str, 14) // over two epochs (5 batches + end each)
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			t.Fatalf("batch %d differs between resident and streaming", i)
		}
	}
	// the pixels are the dataset's
	torch.WithScope(func() {
		bt, _, _ := res.Next()
		i := bt.Index[0]
		if got := bt.Images.Narrow(0, 0, 1).Flatten(0, -1).Int64s(); got[0] != int64(d.Image(int(i))[0]) {
			t.Errorf("image of index %d does not match the dataset", i)
		}
	})
	// resume both mid-epoch from the resident loader's state
	st := res.State()
	if err := str.Restore(st); err != nil {
		t.Fatal(err)
	}
	fresh, _ := NewLoader(d, torch.CPU, opts)
	defer fresh.Close()
	if err := fresh.Restore(st); err != nil {
		t.Fatal(err)
	}
	a, b, c := epochSigs(t, res, 9), epochSigs(t, str, 9), epochSigs(t, fresh, 9)
	for i := range a {
		if !slices.Equal(a[i], b[i]) || !slices.Equal(a[i], c[i]) {
			t.Fatalf("batch %d after restore differs", i)
		}
	}
	str.Close()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > base {
		t.Errorf("%d goroutines left after Close (had %d)", g, base)
	}
}

// The resident loader uploads each epoch's order once (one host-to-device copy at the epoch's first
// batch) and slices every batch from it on the device.
func TestResidentLoaderCopiesOncePerEpoch(t *testing.T) {
	d := testDataset(37)
	l, err := NewLoader(d, torch.CPU, LoaderOptions{SamplerOptions: SamplerOptions{BatchSize: 8, Seed: 5}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for epoch := 0; epoch < 2; epoch++ {
		for batch := 0; ; batch++ {
			before := torch.HostCopies()
			var ok bool
			torch.WithScope(func() { _, ok, err = l.Next() })
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			want := uint64(0)
			if batch == 0 {
				want = 1
			}
			if n := torch.HostCopies() - before; n != want {
				t.Errorf("epoch %d batch %d: %d host copies, want %d", epoch, batch, n, want)
			}
		}
	}
}
