package data

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// DefaultValFraction and DefaultSplitSeed are the reference setup's validation split: 10% of the
// training set, seed 42.
const (
	DefaultValFraction        = 0.1
	DefaultSplitSeed   uint64 = 42
)

// Each sampling function draws from its own PCG stream, so using one seed for several of them does
// not correlate their choices.
const (
	streamValSplit uint64 = 0x7661_6c73_706c_6974 // "valsplit"
	streamLimit    uint64 = 0x6c69_6d69_7463_6c73 // "limitcls"
	streamImbal    uint64 = 0x696d_6261_6c61_6e63 // "imbalanc"
	streamSynth    uint64 = 0x7379_6e74_6865_7469 // "syntheti"
)

// rng is a seeded PCG with its own bounded-integer and shuffle routines: math/rand/v2 fixes PCG's
// output stream, and owning the rest keeps splits identical across Go releases.
type rng struct{ pcg *rand.PCG }

func newRNG(seed, stream uint64) rng { return rng{rand.NewPCG(seed, stream)} }

// intN returns a uniform integer in [0, n) by rejection, without modulo bias.
func (r rng) intN(n int) int {
	bound := uint64(n)
	limit := math.MaxUint64 - math.MaxUint64%bound
	for {
		if x := r.pcg.Uint64(); x < limit {
			return int(x % bound)
		}
	}
}

// shuffle permutes s in place (Fisher-Yates).
func (r rng) shuffle(s []int) {
	for i := len(s) - 1; i > 0; i-- {
		j := r.intN(i + 1)
		s[i], s[j] = s[j], s[i]
	}
}

// StratifyLabels returns the labels splits are stratified by: Fine when every sample has one (so
// validation keeps every fine class), else Coarse.
func (d *Dataset) StratifyLabels() []int64 {
	for _, f := range d.Fine {
		if f < 0 {
			return d.Coarse
		}
	}
	return d.Fine
}

// byClass returns the sample indices of each label value, in index order, with labels sorted.
func byClass(labels []int64) (classes []int64, members map[int64][]int) {
	members = map[int64][]int{}
	for i, l := range labels {
		if _, ok := members[l]; !ok {
			classes = append(classes, l)
		}
		members[l] = append(members[l], i)
	}
	sort.Slice(classes, func(i, j int) bool { return classes[i] < classes[j] })
	return classes, members
}

// TrainValIndices splits sample indices into train and validation, stratified by label: each class
// gives round(fraction * its size) samples, chosen by a seeded shuffle, to validation. fraction 0
// means DefaultValFraction. Both index lists are sorted, so subsets keep the original order.
func TrainValIndices(labels []int64, fraction float64, seed uint64) (train, val []int, err error) {
	if fraction == 0 {
		fraction = DefaultValFraction
	}
	if !(fraction > 0 && fraction < 1) {
		return nil, nil, fmt.Errorf("validation fraction %v: want 0 < fraction < 1", fraction)
	}
	r := newRNG(seed, streamValSplit)
	classes, members := byClass(labels)
	for _, c := range classes {
		idx := append([]int(nil), members[c]...)
		r.shuffle(idx)
		k := int(math.Round(fraction * float64(len(idx))))
		val = append(val, idx[:k]...)
		train = append(train, idx[k:]...)
	}
	sort.Ints(train)
	sort.Ints(val)
	return train, val, nil
}

// SplitTrainVal splits d into training and validation sets (see TrainValIndices), stratified by
// d.StratifyLabels().
func SplitTrainVal(d *Dataset, fraction float64, seed uint64) (train, val *Dataset, err error) {
	ti, vi, err := TrainValIndices(d.StratifyLabels(), fraction, seed)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", d.Name, err)
	}
	train, val = d.Subset(ti), d.Subset(vi)
	train.Name, val.Name = d.Name+"-train", d.Name+"-val"
	return train, val, nil
}

// LimitPerClassIndices keeps at most k samples of each label, the first k of a seeded shuffle of
// that label's samples; the result is sorted. k <= 0 keeps everything.
func LimitPerClassIndices(labels []int64, k int, seed uint64) []int {
	if k <= 0 {
		all := make([]int, len(labels))
		for i := range all {
			all[i] = i
		}
		return all
	}
	r := newRNG(seed, streamLimit)
	classes, members := byClass(labels)
	var keep []int
	for _, c := range classes {
		idx := append([]int(nil), members[c]...)
		r.shuffle(idx)
		keep = append(keep, idx[:min(k, len(idx))]...)
	}
	sort.Ints(keep)
	return keep
}

// LimitPerClass keeps at most k samples per class of d.StratifyLabels(), for quick runs.
func LimitPerClass(d *Dataset, k int, seed uint64) *Dataset {
	return d.Subset(LimitPerClassIndices(d.StratifyLabels(), k, seed))
}

// CIFAR100ImbalancedSizes are the paper's per-subclass sizes for imbalanced CIFAR-100: inside each
// superclass, its five classes keep 500, 250, 100, 50 and 50 training images.
var CIFAR100ImbalancedSizes = []int{500, 250, 100, 50, 50}

// ImbalanceSubclasses resamples d so that within each coarse class, its fine classes keep sizes[0],
// sizes[1], ... samples, which fine class gets which size being a seeded permutation drawn per coarse
// class; the samples kept are the first of a seeded shuffle. Every coarse class must have exactly
// len(sizes) fine classes, each with enough samples. It returns the subset and, per fine class, the
// size it was given.
func ImbalanceSubclasses(d *Dataset, sizes []int, seed uint64) (*Dataset, map[int64]int, error) {
	r := newRNG(seed, streamImbal)
	fineOf := map[int64]map[int64]bool{}
	for i := 0; i < d.N; i++ {
		if d.Fine[i] < 0 {
			return nil, nil, fmt.Errorf("%s: %s: fine label unknown; imbalancing needs every fine label", d.Name, d.SourceOf(i))
		}
		if fineOf[d.Coarse[i]] == nil {
			fineOf[d.Coarse[i]] = map[int64]bool{}
		}
		fineOf[d.Coarse[i]][d.Fine[i]] = true
	}
	_, members := byClass(d.Fine)
	coarseClasses := make([]int64, 0, len(fineOf))
	for c := range fineOf {
		coarseClasses = append(coarseClasses, c)
	}
	sort.Slice(coarseClasses, func(i, j int) bool { return coarseClasses[i] < coarseClasses[j] })
	given := map[int64]int{}
	var keep []int
	for _, c := range coarseClasses {
		var fines []int64
		for f := range fineOf[c] {
			fines = append(fines, f)
		}
		sort.Slice(fines, func(i, j int) bool { return fines[i] < fines[j] })
		if len(fines) != len(sizes) {
			return nil, nil, fmt.Errorf("%s: coarse class %d has %d fine classes, but %d sizes were given", d.Name, c, len(fines), len(sizes))
		}
		order := make([]int, len(sizes))
		for i := range order {
			order[i] = i
		}
		r.shuffle(order)
		for k, f := range fines {
			size := sizes[order[k]]
			idx := append([]int(nil), members[f]...)
			if len(idx) < size {
				return nil, nil, fmt.Errorf("%s: fine class %d has %d samples, fewer than the %d it was assigned", d.Name, f, len(idx), size)
			}
			r.shuffle(idx)
			keep = append(keep, idx[:size]...)
			given[f] = size
		}
	}
	sort.Ints(keep)
	out := d.Subset(keep)
	out.Name = d.Name + "-imbalanced"
	return out, given, nil
}
