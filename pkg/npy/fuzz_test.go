package npy

import (
	"bytes"
	"testing"
)

// FuzzRead checks that Read never panics and that whatever it accepts
// survives a Write/Read round trip unchanged. Seeds live in
// testdata/fuzz/FuzzRead (numpy fixtures plus edge cases).
func FuzzRead(f *testing.F) {
	for _, a := range sampleArrays() {
		b, err := Marshal(a)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		a, err := Read(bytes.NewReader(in))
		if err != nil {
			return
		}
		if _, n, err := a.validate(); err != nil || n != a.Len() {
			t.Fatalf("Read returned an inconsistent array: %v", err)
		}
		if _, err := a.Float64s(); err != nil {
			t.Fatalf("Float64s: %v", err)
		}
		out, err := Marshal(a)
		if err != nil {
			t.Fatalf("Marshal of accepted array: %v", err)
		}
		b, err := Read(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("re-read: %v", err)
		}
		if !bytes.Equal(u64bytes(bitsOf(a.Data)), u64bytes(bitsOf(b.Data))) || len(a.Shape) != len(b.Shape) {
			t.Fatalf("round trip changed the array")
		}
		for i := range a.Shape {
			if a.Shape[i] != b.Shape[i] {
				t.Fatalf("round trip changed shape %v -> %v", a.Shape, b.Shape)
			}
		}
	})
}

func u64bytes(v []uint64) []byte {
	out := make([]byte, 0, 8*len(v))
	for _, x := range v {
		for i := 0; i < 8; i++ {
			out = append(out, byte(x>>(8*i)))
		}
	}
	return out
}
