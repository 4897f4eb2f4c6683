package data

import (
	"slices"
	"testing"
)

// toyDigits is a 1-channel 4x4 digit set, label i%10, every pixel of sample i == 10+i.
func toyDigits(n int) *Dataset {
	ds := &Dataset{Name: "digits", N: n, C: 1, H: 4, W: 4, Pixels: make([]uint8, n*16),
		Coarse: make([]int64, n), Fine: make([]int64, n), Group: filled(n, -1),
		CoarseNames: MNISTClassNames, FineNames: MNISTClassNames}
	for i := 0; i < n; i++ {
		ds.Fine[i], ds.Coarse[i] = int64(i%10), int64(i%10)
		for j := range ds.Image(i) {
			ds.Image(i)[j] = uint8(10 + i)
		}
	}
	return ds
}

func TestColoredMNIST(t *testing.T) {
	src := toyDigits(200)
	ds, err := ColoredMNIST(src, 0.95, 1)
	if err != nil {
		t.Fatal(err)
	}
	agree := 0
	groups := ClassCounts(ds.Group, 4)
	for i := 0; i < ds.N; i++ {
		colour := ds.Group[i] % 2
		if colour == ds.Coarse[i] {
			agree++
		}
		if ds.Coarse[i] != ds.Fine[i]/5 {
			t.Fatalf("sample %d: coarse %d for digit %d", i, ds.Coarse[i], ds.Fine[i])
		}
		img := ds.Image(i)
		on, off := img[colour*16], img[(1-colour)*16]
		if on != uint8(10+i) || off != 0 || img[2*16] != 0 {
			t.Fatalf("sample %d colour %d: channels %v", i, colour, img[:48:48])
		}
	}
	if agree != 190 {
		t.Errorf("%d of 200 agree, want exactly 190", agree)
	}
	if groups[1]+groups[2] != 10 {
		t.Errorf("minority groups hold %d, want 10 (%v)", groups[1]+groups[2], groups)
	}
	again, _ := ColoredMNIST(src, 0.95, 1)
	if !slices.Equal(again.Group, ds.Group) {
		t.Error("not deterministic")
	}
	test, _ := ColoredMNIST(src, 0.5, 2)
	if g := ClassCounts(test.Group, 4); g[0]+g[3] != 100 {
		t.Errorf("independent test set groups %v", g)
	}
	if _, err := ColoredMNIST(src, 1.5, 1); err == nil {
		t.Error("agreement 1.5: want an error")
	}
}

func TestWaterbirdsLike(t *testing.T) {
	digits := toyDigits(100)
	// Backgrounds 100..103, even ones vehicles, odd ones animals.
	bg := &Dataset{Name: "bg", N: 4, C: 3, H: 8, W: 8, Pixels: make([]uint8, 4*3*64),
		Coarse: []int64{0, 1, 0, 1}, Fine: []int64{0, 2, 8, 3}, Group: filled(4, -1),
		CoarseNames: []string{"vehicle", "animal"}, FineNames: CIFAR10ClassNames}
	for i := 0; i < 4; i++ {
		for j := range bg.Image(i) {
			bg.Image(i)[j] = uint8(100 + i)
		}
	}
	ds, err := WaterbirdsLike(digits, bg, 0.9, 5)
	if err != nil {
		t.Fatal(err)
	}
	if ds.N != 100 || ds.C != 3 || ds.H != 8 {
		t.Fatalf("shape %d %d %d", ds.N, ds.C, ds.H)
	}
	agree := 0
	for i := 0; i < ds.N; i++ {
		place := ds.Group[i] % 2
		if place == ds.Coarse[i] {
			agree++
		}
		img := ds.Image(i)
		corner := img[0] // outside the centred 4x4 digit: pure background
		if int64(corner-100)%2 != place {
			t.Fatalf("sample %d: background %d is not of class %d", i, corner, place)
		}
		a := uint32(10 + i)
		want := uint8((uint32(corner)*(255-a) + 255*a + 127) / 255)
		if centre := img[2*8+2]; centre != want {
			t.Fatalf("sample %d: centre %d, want %d", i, centre, want)
		}
	}
	if agree != 90 {
		t.Errorf("%d of 100 agree, want 90", agree)
	}
	if _, err := WaterbirdsLike(bg, bg, 0.9, 5); err == nil {
		t.Error("3-channel digits: want an error")
	}
}
