package data

import (
	"slices"
	"testing"
)

// toyDataset has n samples, fine label i % fineClasses, coarse label fine % 2, one pixel each.
func toyDataset(n, fineClasses int) *Dataset {
	ds := &Dataset{Name: "toy", N: n, C: 1, H: 1, W: 1, Pixels: make([]uint8, n),
		Coarse: make([]int64, n), Fine: make([]int64, n), Group: filled(n, -1),
		CoarseNames: []string{"even", "odd"}}
	for i := 0; i < fineClasses; i++ {
		ds.FineNames = append(ds.FineNames, string(rune('a'+i%26))+string(rune('0'+i/26)))
	}
	for i := 0; i < n; i++ {
		ds.Pixels[i] = uint8(i)
		ds.Fine[i] = int64(i % fineClasses)
		ds.Coarse[i] = ds.Fine[i] % 2
	}
	return ds
}

func TestRNGIsStable(t *testing.T) {
	// Golden values: a change here changes every split a user has made; do it on purpose only.
	r := newRNG(42, streamValSplit)
	got := []int{r.intN(10), r.intN(10), r.intN(1000), r.intN(7)}
	s := []int{0, 1, 2, 3, 4, 5, 6, 7}
	newRNG(1, streamLimit).shuffle(s)
	goldenIntN, goldenShuffle := []int{8, 9, 888, 6}, []int{5, 1, 0, 6, 4, 2, 7, 3}
	if !slices.Equal(got, goldenIntN) || !slices.Equal(s, goldenShuffle) {
		t.Errorf("PRNG output changed: intN %v (golden %v), shuffle %v (golden %v)", got, goldenIntN, s, goldenShuffle)
	}
}

func TestTrainValSplit(t *testing.T) {
	ds := toyDataset(1000, 10)
	train, val, err := SplitTrainVal(ds, 0, DefaultSplitSeed)
	if err != nil {
		t.Fatal(err)
	}
	if train.N != 900 || val.N != 100 {
		t.Fatalf("sizes %d/%d", train.N, val.N)
	}
	for c, n := range val.FineCounts() {
		if n != 10 {
			t.Errorf("val class %d: %d, want 10 (stratified)", c, n)
		}
	}
	_, val2, _ := SplitTrainVal(ds, 0.1, DefaultSplitSeed)
	if !slices.Equal(val.Pixels, val2.Pixels) {
		t.Error("same seed, different split")
	}
	_, val3, _ := SplitTrainVal(ds, 0.1, 7)
	if slices.Equal(val.Pixels, val3.Pixels) {
		t.Error("different seeds, same split")
	}
	tr, va, _ := TrainValIndices(ds.Fine, 0.1, 42)
	if len(tr)+len(va) != 1000 || !slices.IsSorted(tr) || !slices.IsSorted(va) {
		t.Error("indices must partition and be sorted")
	}
	all := append(append([]int(nil), tr...), va...)
	slices.Sort(all)
	for i, v := range all {
		if v != i {
			t.Fatalf("indices are not a partition at %d", i)
		}
	}
	if _, _, err := SplitTrainVal(ds, 1.5, 1); err == nil {
		t.Error("fraction 1.5: want an error")
	}
}

func TestLimitPerClass(t *testing.T) {
	ds := toyDataset(100, 4)
	small := LimitPerClass(ds, 3, 9)
	if small.N != 12 {
		t.Fatalf("N=%d", small.N)
	}
	for c, n := range small.FineCounts() {
		if n != 3 {
			t.Errorf("class %d: %d", c, n)
		}
	}
	if again := LimitPerClass(ds, 3, 9); !slices.Equal(again.Pixels, small.Pixels) {
		t.Error("not deterministic")
	}
	if LimitPerClass(ds, 0, 9).N != 100 || LimitPerClass(ds, 1000, 9).N != 100 {
		t.Error("k=0 or k>class size must keep all")
	}
}

func TestImbalanceSubclasses(t *testing.T) {
	// A CIFAR-100-shaped set: 100 fine classes in 20 superclasses, 12 samples each.
	m := CIFAR100SuperclassMap()
	ds := toyDataset(1200, 100)
	ds.FineNames = CIFAR100ClassNames
	if err := ds.ApplyLabelMap(m); err != nil {
		t.Fatal(err)
	}
	sizes := []int{10, 5, 2, 1, 1}
	out, given, err := ImbalanceSubclasses(ds, sizes, 3)
	if err != nil {
		t.Fatal(err)
	}
	if out.N != 20*19 {
		t.Fatalf("N=%d, want %d", out.N, 20*19)
	}
	counts := out.FineCounts()
	for c := 0; c < 20; c++ {
		var got []int
		for f, fc := range m.FineToCoarse {
			if fc == c {
				got = append(got, counts[f])
				if given[int64(f)] != counts[f] {
					t.Errorf("fine %d: given %d, has %d", f, given[int64(f)], counts[f])
				}
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, []int{1, 1, 2, 5, 10}) {
			t.Errorf("superclass %d sizes %v", c, got)
		}
	}
	// Different superclasses get different assignments (a shuffle, not a fixed order).
	first := map[int]bool{}
	for c := 0; c < 20; c++ {
		for f, fc := range m.FineToCoarse {
			if fc == c {
				first[counts[f]] = true
				break
			}
		}
	}
	if len(first) < 2 {
		t.Error("every superclass gave its first class the same size")
	}
	out2, _, _ := ImbalanceSubclasses(ds, sizes, 3)
	if !slices.Equal(out.Pixels, out2.Pixels) {
		t.Error("not deterministic")
	}
	_, _, err = ImbalanceSubclasses(ds, CIFAR100ImbalancedSizes, 3)
	wantErr(t, err, "has 12 samples, fewer than")
	_, _, err = ImbalanceSubclasses(ds, []int{1, 1}, 3)
	wantErr(t, err, "has 5 fine classes, but 2 sizes")
}

func TestSubsetAndValidate(t *testing.T) {
	ds := toyDataset(10, 5)
	ds.Source = make([]string, 10)
	sub := ds.Subset([]int{9, 0, 9})
	if sub.N != 3 || sub.Pixels[0] != 9 || sub.Fine[1] != 0 || len(sub.Source) != 3 {
		t.Errorf("subset %+v", sub)
	}
	if err := sub.Validate(); err != nil {
		t.Error(err)
	}
	bad := ds.Subset([]int{1, 2})
	bad.Coarse[1] = 2
	wantErr(t, bad.Validate(), "toy", "coarse label 2 out of range")
	bad = ds.Subset([]int{1, 2})
	bad.Pixels = bad.Pixels[:1]
	wantErr(t, bad.Validate(), "1 pixel bytes")
	bad = ds.Subset([]int{1})
	bad.Fine[0] = -2
	wantErr(t, bad.Validate(), "fine label -2")
	if c := ClassCounts([]int64{0, 1, 1, -1, 5}, 2); !slices.Equal(c, []int{1, 2}) {
		t.Errorf("ClassCounts %v", c)
	}
}
