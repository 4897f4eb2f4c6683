package data

import (
	"errors"
	"fmt"
)

// Dataset is an in-memory image set as uint8 NCHW (what a torch tensor wants), with labels.
type Dataset struct {
	Name        string
	N, C, H, W  int
	Pixels      []uint8 // len N*C*H*W, NCHW order
	Coarse      []int64 // coarse (training) label per sample
	Fine        []int64 // fine label per sample (== original class); -1 if unknown
	Group       []int64 // group label per sample; -1 if unknown
	CoarseNames []string
	FineNames   []string
	Source      []string // optional: file (and row) each sample came from, for error messages; may be nil
}

// SampleSize is the number of pixel bytes of one sample (C*H*W).
func (d *Dataset) SampleSize() int { return d.C * d.H * d.W }

// Image returns sample i's pixels (CHW), sharing memory with d.Pixels.
func (d *Dataset) Image(i int) []uint8 {
	s := d.SampleSize()
	return d.Pixels[i*s : (i+1)*s : (i+1)*s]
}

// SourceOf describes where sample i came from, for error messages.
func (d *Dataset) SourceOf(i int) string {
	if i >= 0 && i < len(d.Source) && d.Source[i] != "" {
		return d.Source[i]
	}
	return fmt.Sprintf("%s sample %d", d.Name, i)
}

// Validate checks that every slice length agrees with N and the shape, and that every label is in
// range of its names (Fine and Group may be -1 for unknown). Loaders call it before returning, so a
// Dataset from this package is always valid; call it again after building one by hand.
func (d *Dataset) Validate() error {
	if d == nil {
		return errors.New("dataset is nil")
	}
	name := d.Name
	if name == "" {
		name = "dataset"
	}
	if d.N < 0 || d.C <= 0 || d.H <= 0 || d.W <= 0 {
		return fmt.Errorf("%s: bad shape N=%d C=%d H=%d W=%d", name, d.N, d.C, d.H, d.W)
	}
	if want := d.N * d.C * d.H * d.W; len(d.Pixels) != want {
		return fmt.Errorf("%s: %d pixel bytes, want N*C*H*W = %d*%d*%d*%d = %d", name, len(d.Pixels), d.N, d.C, d.H, d.W, want)
	}
	if len(d.Coarse) != d.N {
		return fmt.Errorf("%s: %d coarse labels for %d samples", name, len(d.Coarse), d.N)
	}
	if len(d.Fine) != d.N {
		return fmt.Errorf("%s: %d fine labels for %d samples", name, len(d.Fine), d.N)
	}
	if len(d.Group) != d.N {
		return fmt.Errorf("%s: %d group labels for %d samples", name, len(d.Group), d.N)
	}
	if d.Source != nil && len(d.Source) != d.N {
		return fmt.Errorf("%s: %d source entries for %d samples", name, len(d.Source), d.N)
	}
	for i := 0; i < d.N; i++ {
		if c := d.Coarse[i]; c < 0 || c >= int64(len(d.CoarseNames)) {
			return fmt.Errorf("%s: %s: coarse label %d out of range [0,%d)", name, d.SourceOf(i), c, len(d.CoarseNames))
		}
		if f := d.Fine[i]; f < -1 || (f >= 0 && f >= int64(len(d.FineNames))) {
			return fmt.Errorf("%s: %s: fine label %d out of range [0,%d) (or -1 for unknown)", name, d.SourceOf(i), f, len(d.FineNames))
		}
		if g := d.Group[i]; g < -1 {
			return fmt.Errorf("%s: %s: group label %d is negative (only -1, unknown, may be)", name, d.SourceOf(i), g)
		}
	}
	return nil
}

// Subset returns a new Dataset holding copies of the given samples, in the given order (indices may
// repeat). It panics on an index out of range, as slicing does: indices come from this package's
// split functions or the caller's own code, not from input files.
func (d *Dataset) Subset(indices []int) *Dataset {
	s := d.SampleSize()
	out := &Dataset{
		Name: d.Name, N: len(indices), C: d.C, H: d.H, W: d.W,
		Pixels:      make([]uint8, len(indices)*s),
		Coarse:      make([]int64, len(indices)),
		Fine:        make([]int64, len(indices)),
		Group:       make([]int64, len(indices)),
		CoarseNames: append([]string(nil), d.CoarseNames...),
		FineNames:   append([]string(nil), d.FineNames...),
	}
	if d.Source != nil {
		out.Source = make([]string, len(indices))
	}
	for j, i := range indices {
		if i < 0 || i >= d.N {
			panic(fmt.Sprintf("data: Subset index %d out of range [0,%d)", i, d.N))
		}
		copy(out.Pixels[j*s:(j+1)*s], d.Pixels[i*s:(i+1)*s])
		out.Coarse[j] = d.Coarse[i]
		out.Fine[j] = d.Fine[i]
		out.Group[j] = d.Group[i]
		if d.Source != nil {
			out.Source[j] = d.Source[i]
		}
	}
	return out
}

// ClassCounts returns the number of samples per label, indexed by label, for labels in [0, n);
// labels outside that range (the -1 of "unknown") are not counted. Use it as
// ClassCounts(d.Coarse, len(d.CoarseNames)) or ClassCounts(d.Fine, len(d.FineNames)).
func ClassCounts(labels []int64, n int) []int {
	counts := make([]int, n)
	for _, l := range labels {
		if l >= 0 && l < int64(n) {
			counts[l]++
		}
	}
	return counts
}

// CoarseCounts is ClassCounts over the coarse labels.
func (d *Dataset) CoarseCounts() []int { return ClassCounts(d.Coarse, len(d.CoarseNames)) }

// FineCounts is ClassCounts over the fine labels.
func (d *Dataset) FineCounts() []int { return ClassCounts(d.Fine, len(d.FineNames)) }

// NumGroups is one more than the largest group label (0 when no group is known).
func (d *Dataset) NumGroups() int {
	m := int64(-1)
	for _, g := range d.Group {
		m = max(m, g)
	}
	return int(m + 1)
}

// filled returns a slice of n copies of v.
func filled(n int, v int64) []int64 {
	s := make([]int64, n)
	for i := range s {
		s[i] = v
	}
	return s
}
