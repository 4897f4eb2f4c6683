package data

import (
	"bytes"
	"math"
	"sort"
	"strings"
	"testing"
)

func sqrt(x float64) float64 { return math.Sqrt(x) }

func TestBuiltinMapsValid(t *testing.T) {
	for _, name := range []string{"cifar10", "cifar100", "mnist", "fashion-mnist"} {
		m, err := BuiltinLabelMap(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := BuiltinLabelMap("imagenet"); err == nil {
		t.Error("unknown map: want an error")
	}
}

func TestCIFAR100Hierarchy(t *testing.T) {
	if len(CIFAR100ClassNames) != 100 || !sort.StringsAreSorted(CIFAR100ClassNames) {
		t.Fatal("fine names must be the 100 alphabetical CIFAR-100 classes")
	}
	m := CIFAR100SuperclassMap()
	counts := make([]int, 20)
	for _, c := range m.FineToCoarse {
		counts[c]++
	}
	for c, n := range counts {
		if n != 5 {
			t.Errorf("superclass %s has %d classes, want 5", m.CoarseNames[c], n)
		}
	}
	// The first entries of the well-known fine->coarse table (apple, aquarium_fish, baby, bear, beaver,
	// bed, bee, beetle, bicycle, bottle), and the last (worm).
	want := []int{4, 1, 14, 8, 0, 6, 7, 7, 18, 3}
	for i, w := range want {
		if m.FineToCoarse[i] != w {
			t.Errorf("fine %s -> %d, want %d", CIFAR100ClassNames[i], m.FineToCoarse[i], w)
		}
	}
	if m.FineToCoarse[99] != 13 {
		t.Errorf("worm -> %d, want 13", m.FineToCoarse[99])
	}
}

func TestFashionAndCIFAR10Maps(t *testing.T) {
	f := FashionMNISTUpperBodyMap()
	var upper []string
	for i, c := range f.FineToCoarse {
		if c == 0 {
			upper = append(upper, f.FineNames[i])
		}
	}
	if strings.Join(upper, ",") != "T-shirt/top,Pullover,Dress,Coat,Shirt" {
		t.Errorf("upper-body classes %v", upper)
	}
	c := CIFAR10VehicleAnimalMap()
	var vehicles []string
	for i, k := range c.FineToCoarse {
		if k == 0 {
			vehicles = append(vehicles, c.FineNames[i])
		}
	}
	if strings.Join(vehicles, ",") != "airplane,automobile,ship,truck" {
		t.Errorf("vehicles %v", vehicles)
	}
}

func TestParseLabelMap(t *testing.T) {
	text := `# CIFAR-10, three ways
airplane: flying
bird: flying   # birds fly too
2: x`
	_, err := ParseLabelMap(strings.NewReader(text), "m.txt", CIFAR10ClassNames)
	wantErr(t, err, "m.txt:4", "mapped twice")

	text = "automobile: ground\n0: air\nbird: air\ncat: ground\ndeer: ground\ndog: ground\nfrog: ground\nhorse: ground\nship: sea\ntruck: ground\n"
	m, err := ParseLabelMap(strings.NewReader(text), "m.txt", CIFAR10ClassNames)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(m.CoarseNames, ",") != "ground,air,sea" || m.FineToCoarse[0] != 1 || m.FineToCoarse[8] != 2 {
		t.Errorf("parsed %v %v", m.CoarseNames, m.FineToCoarse)
	}
	// Round trip through WriteLabelMap keeps the coarse numbering.
	for _, orig := range []*LabelMap{m, CIFAR100SuperclassMap()} {
		var buf bytes.Buffer
		if err := WriteLabelMap(&buf, orig); err != nil {
			t.Fatal(err)
		}
		back, err := ParseLabelMap(&buf, "rt", orig.FineNames)
		if err != nil {
			t.Fatal(err)
		}
		for i := range orig.FineToCoarse {
			if back.FineToCoarse[i] != orig.FineToCoarse[i] || back.CoarseNames[back.FineToCoarse[i]] != orig.CoarseNames[orig.FineToCoarse[i]] {
				t.Fatalf("%s round trip differs at %d", orig.Name, i)
			}
		}
	}
	cases := []struct{ text, want string }{
		{"airplane vehicle\n", `m.txt:1: want "fine: coarse"`},
		{"plane: vehicle\n", `m.txt:1: "plane" is neither`},
		{"10: vehicle\n", `"10" is neither`},
		{"airplane:\n", "m.txt:1"},
		{"airplane: v\n", "fine classes not mapped: automobile, bird"},
	}
	for _, tc := range cases {
		_, err := ParseLabelMap(strings.NewReader(tc.text), "m.txt", CIFAR10ClassNames)
		wantErr(t, err, tc.want)
	}
}

func TestApplyLabelMapErrors(t *testing.T) {
	ds := &Dataset{Name: "toy", N: 2, C: 1, H: 1, W: 1, Pixels: []uint8{0, 0}, Coarse: []int64{0, 0}, Fine: []int64{3, -1},
		Group: []int64{-1, -1}, CoarseNames: MNISTClassNames, FineNames: MNISTClassNames}
	wantErr(t, ds.ApplyLabelMap(MNISTDigitMap()), "toy", "sample 1", "cannot be mapped")
	wantErr(t, ds.ApplyLabelMap(CIFAR10VehicleAnimalMap()), "fine class 0 is \"airplane\" in the map but \"0\"")
}
