package safetensors

import (
	"bytes"
	"fmt"
	"testing"
)

// FuzzRead checks that Read never panics, that ReadAt agrees with it, and
// that whatever is accepted survives a Marshal/Read round trip. Seeds live
// in testdata/fuzz/FuzzRead.
func FuzzRead(f *testing.F) {
	b, err := Marshal(sampleFile())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, in []byte) {
		a, err := Read(in)
		b, errAt := ReadAt(bytes.NewReader(in), int64(len(in)))
		if (err == nil) != (errAt == nil) {
			t.Fatalf("Read err %v, ReadAt err %v", err, errAt)
		}
		if err != nil {
			return
		}
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("Read and ReadAt disagree")
		}
		out, err := Marshal(a)
		if err != nil {
			t.Fatalf("Marshal of accepted file: %v", err)
		}
		c, err := Read(out)
		if err != nil {
			t.Fatalf("re-read: %v", err)
		}
		sameFile(t, c, a)
	})
}
