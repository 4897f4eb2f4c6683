package npy

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func sampleArrays() map[string]*Array {
	nan32 := float32(math.NaN())
	return map[string]*Array{
		"f4":       FromFloat32([]float32{0, -1.5, 3.25, 1e-7, float32(math.Inf(-1)), nan32}, 2, 3),
		"f8":       array(Float64, []float64{math.Pi, -0.0, math.Inf(1), math.NaN(), 1e300}),
		"i8":       FromInt64([]int64{math.MaxInt64, math.MinInt64, 0, -1}, 2, 2),
		"i4":       array(Int32, []int32{math.MaxInt32, math.MinInt32, 7, -7}, 4, 1),
		"u1":       array(Uint8, []uint8{0, 1, 127, 128, 254, 255, 3, 4}, 2, 2, 2),
		"b1":       array(Bool, []bool{true, false, true}),
		"f8scalar": {DType: Float64, Shape: []int{}, Data: []float64{2.5}},
		"f4empty":  FromFloat32([]float32{}, 0, 3),
		"i8empty":  FromInt64(nil, 0),
	}
}

// sameArray compares arrays, treating NaNs as equal bit patterns.
func sameArray(t *testing.T, got, want *Array) {
	t.Helper()
	if got.DType != want.DType {
		t.Fatalf("dtype %s, want %s", got.DType, want.DType)
	}
	if len(got.Shape) != len(want.Shape) || (len(got.Shape) > 0 && !reflect.DeepEqual(got.Shape, want.Shape)) {
		t.Fatalf("shape %v, want %v", got.Shape, want.Shape)
	}
	g, w := bitsOf(got.Data), bitsOf(want.Data)
	if len(g) != len(w) {
		t.Fatalf("len %d, want %d", len(g), len(w))
	}
	for i := range g {
		if g[i] != w[i] {
			t.Fatalf("element %d: got %v, want %v", i, got.Data, want.Data)
		}
	}
}

func bitsOf(data any) []uint64 {
	var out []uint64
	switch v := data.(type) {
	case []float32:
		for _, x := range v {
			out = append(out, uint64(math.Float32bits(x)))
		}
	case []float64:
		for _, x := range v {
			out = append(out, math.Float64bits(x))
		}
	case []int64:
		for _, x := range v {
			out = append(out, uint64(x))
		}
	case []int32:
		for _, x := range v {
			out = append(out, uint64(x))
		}
	case []uint8:
		for _, x := range v {
			out = append(out, uint64(x))
		}
	case []bool:
		for _, x := range v {
			if x {
				out = append(out, 1)
			} else {
				out = append(out, 0)
			}
		}
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	for name, a := range sampleArrays() {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Write(&buf, a); err != nil {
				t.Fatal(err)
			}
			b := buf.Bytes()
			if b[6] != 1 || b[7] != 0 {
				t.Fatalf("version %d.%d, want 1.0", b[6], b[7])
			}
			hl := int(binary.LittleEndian.Uint16(b[8:]))
			if (10+hl)%64 != 0 || b[10+hl-1] != '\n' {
				t.Fatalf("header not 64-aligned or not newline terminated: %q", b[:10+hl])
			}
			got, err := Read(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			sameArray(t, got, a)

			p := filepath.Join(t.TempDir(), name+".npy")
			if err := WriteFile(p, a); err != nil {
				t.Fatal(err)
			}
			got, err = ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			sameArray(t, got, a)
		})
	}
}

// Arrays written back to back must read back in turn (Read must not over-read).
func TestReadConsecutive(t *testing.T) {
	var buf bytes.Buffer
	arrs := sampleArrays()
	names := []string{"f4", "u1", "b1", "f8scalar"}
	for _, n := range names {
		if err := Write(&buf, arrs[n]); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range names {
		got, err := Read(&buf)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		sameArray(t, got, arrs[n])
	}
	if buf.Len() != 0 {
		t.Fatalf("%d bytes left over", buf.Len())
	}
}

// The writer switches to version 2.0 when the header exceeds 64 KiB; no real
// dtype here needs that, so force it with an absurd number of dims.
func TestWriteVersion2(t *testing.T) {
	shape := make([]int, 25000)
	for i := range shape {
		shape[i] = 1
	}
	a := FromFloat32([]float32{42}, shape...)
	b, err := Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if b[6] != 2 {
		t.Fatalf("version %d, want 2", b[6])
	}
	if hl := binary.LittleEndian.Uint32(b[8:]); (12+hl)%64 != 0 {
		t.Fatalf("header length %d not aligned", hl)
	}
	got, err := Read(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	sameArray(t, got, a)
}

// Reading versions 2.0 and 3.0 and big-endian data is covered by the numpy
// fixtures; this checks the parser on header spellings numpy has used.
func TestHeaderVariants(t *testing.T) {
	for _, h := range []string{
		"{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }",
		`{"descr":"<i4","fortran_order":False,"shape":(2,)}`,
		"{'shape': (2L,), 'fortran_order': False, 'descr': '<i4'}",
		"{'descr': '<i4', 'fortran_order': False, 'shape': (1, 2), }\x00\x00",
	} {
		raw := build(1, h, []byte{1, 0, 0, 0, 2, 0, 0, 0})
		a, err := Read(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%q: %v", h, err)
		}
		if v := a.Data.([]int32); len(v) != 2 || v[0] != 1 || v[1] != 2 {
			t.Fatalf("%q: data %v", h, v)
		}
	}
}

// build assembles a raw .npy file with an arbitrary header string.
func build(major byte, header string, data []byte) []byte {
	var b bytes.Buffer
	b.WriteString(magic)
	b.WriteByte(major)
	b.WriteByte(0)
	if major == 1 {
		binary.Write(&b, binary.LittleEndian, uint16(len(header)+1))
	} else {
		binary.Write(&b, binary.LittleEndian, uint32(len(header)+1))
	}
	b.WriteString(header)
	b.WriteByte('\n')
	b.Write(data)
	return b.Bytes()
}

func TestBadInput(t *testing.T) {
	good, _ := Marshal(FromFloat32([]float32{1, 2, 3}))
	hdr := func(h string) []byte { return build(1, h, make([]byte, 64)) }
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "reading magic"},
		{"bad magic", []byte("PK\x03\x04 not npy at all"), "bad magic"},
		{"bad version", append([]byte(magic+"\x04\x00"), 0, 0), "unsupported format version 4.0"},
		{"bad minor", append([]byte(magic+"\x01\x01"), 0, 0), "unsupported format version 1.1"},
		{"short header", []byte(magic + "\x01\x00\x50\x00{'descr'"), "reading 80-byte header"},
		{"huge v2 header", []byte(magic + "\x02\x00\xff\xff\xff\x7f"), "exceeds limit"},
		{"truncated data", good[:len(good)-3], "truncated data"},
		{"not a dict", hdr("['<f4']"), "not a dict"},
		{"unterminated", hdr("{'descr': '<f4"), "unterminated string"},
		{"garbage", hdr("{'descr': <f4}"), "bad header"},
		{"missing key", hdr("{'descr': '<f4', 'shape': (1,)}"), "want exactly keys"},
		{"extra key", hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}"), "want exactly keys"},
		{"dup key", hdr("{'descr': '<f4', 'descr': '<f4', 'shape': (1,)}"), "duplicate key"},
		{"fortran not bool", hdr("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}"), "fortran_order"},
		{"shape list", hdr("{'descr': '<f4', 'fortran_order': False, 'shape': [1]}"), "shape must be a tuple"},
		{"shape negative", hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}"), "non-negative"},
		{"shape str", hdr("{'descr': '<f4', 'fortran_order': False, 'shape': ('a',)}"), "non-negative"},
		{"shape overflow", hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}"), "too large"},
		{"int overflow", hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}"), "bad integer"},
		{"float16", hdr("{'descr': '<f2', 'fortran_order': False, 'shape': (1,)}"), "unsupported dtype \"<f2\""},
		{"unicode", hdr("{'descr': '<U3', 'fortran_order': False, 'shape': (1,)}"), "unsupported dtype"},
		{"object", hdr("{'descr': '|O', 'fortran_order': False, 'shape': (1,)}"), "unsupported dtype"},
		{"native order", hdr("{'descr': '=f4', 'fortran_order': False, 'shape': (1,)}"), "byte order"},
		{"pipe f4", hdr("{'descr': '|f4', 'fortran_order': False, 'shape': (1,)}"), "explicit byte order"},
		{"structured", hdr("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}"), "structured"},
		{"deep", hdr("{'descr': " + strings.Repeat("(", 100) + "}"), "nested too deeply"},
		{"big shape short data", hdr("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000,)}"), "truncated data"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestReadFileErrorsNameFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "broken.npy")
	good, _ := Marshal(array(Float64, []float64{1, 2, 3}))
	os.WriteFile(p, good[:len(good)-1], 0o644)
	_, err := ReadFile(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("err = %v", err)
	}
	_, err = ReadFile(filepath.Join(t.TempDir(), "missing.npy"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}

func TestWriteRejectsInvalid(t *testing.T) {
	for name, a := range map[string]*Array{
		"nil":        nil,
		"bad dtype":  {DType: "float16", Shape: []int{1}, Data: []float32{1}},
		"mismatch":   {DType: Float64, Shape: []int{1}, Data: []float32{1}},
		"wrong len":  array(Int32, []int32{1, 2, 3}, 2, 2),
		"neg dim":    {DType: Uint8, Shape: []int{-1}, Data: []uint8{}},
		"bad data":   {DType: Uint8, Shape: []int{1}, Data: []int{1}},
		"nil data":   {DType: Uint8, Shape: []int{0}},
		"scalar len": {DType: Bool, Shape: []int{}, Data: []bool{}},
	} {
		if err := Write(io.Discard, a); err == nil {
			t.Errorf("%s: Write succeeded", name)
		}
		p := filepath.Join(t.TempDir(), "x.npy")
		if err := WriteFile(p, a); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: WriteFile err = %v", name, err)
		}
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: file created on error", name)
		}
	}
}

func TestConversions(t *testing.T) {
	a := array(Int32, []int32{1, -2, 3})
	f, err := a.Float64s()
	if err != nil || !reflect.DeepEqual(f, []float64{1, -2, 3}) {
		t.Fatalf("Float64s = %v, %v", f, err)
	}
	f32, err := array(Bool, []bool{true, false}).Float32s()
	if err != nil || !reflect.DeepEqual(f32, []float32{1, 0}) {
		t.Fatalf("Float32s = %v, %v", f32, err)
	}
	i, err := array(Uint8, []uint8{255, 0}).Int64s()
	if err != nil || !reflect.DeepEqual(i, []int64{255, 0}) {
		t.Fatalf("Int64s = %v, %v", i, err)
	}
	i, err = FromFloat32([]float32{3, -4}).Int64s()
	if err != nil || !reflect.DeepEqual(i, []int64{3, -4}) {
		t.Fatalf("Int64s(float) = %v, %v", i, err)
	}
	for _, bad := range []*Array{array(Float64, []float64{0.5}), array(Float64, []float64{math.NaN()}), array(Float64, []float64{1e19})} {
		if _, err := bad.Int64s(); err == nil {
			t.Fatalf("Int64s(%v) succeeded", bad.Data)
		}
	}
	if _, err := (&Array{Data: []string{"x"}}).Float64s(); err == nil {
		t.Fatal("Float64s of strings succeeded")
	}
}

func TestTranspose(t *testing.T) {
	// Fortran data of shape (2,3,4) is C data of shape (4,3,2); element
	// [i][j][k] lives at i + 2*j + 6*k.
	src := make([]int, 24)
	for i := range src {
		src[i] = i
	}
	got := transpose(src, []int{2, 3, 4})
	n := 0
	for i := 0; i < 2; i++ {
		for j := 0; j < 3; j++ {
			for k := 0; k < 4; k++ {
				if want := i + 2*j + 6*k; got[n] != want {
					t.Fatalf("[%d][%d][%d] = %d, want %d", i, j, k, got[n], want)
				}
				n++
			}
		}
	}
}

type fixture struct {
	File    string            `json:"file"`
	Version []int             `json:"version"`
	DType   string            `json:"dtype"`
	Fortran bool              `json:"fortran_order"`
	Shape   []int             `json:"shape"`
	Values  []json.RawMessage `json:"values"`
}

// TestNumpyFixtures reads files written by real numpy (testdata/gen.py).
func TestNumpyFixtures(t *testing.T) {
	raw, err := os.ReadFile("testdata/fixtures.json")
	if err != nil {
		t.Fatal(err)
	}
	var fixtures []fixture
	if err := json.Unmarshal(raw, &fixtures); err != nil {
		t.Fatal(err)
	}
	versions := map[int]bool{}
	for _, fx := range fixtures {
		versions[fx.Version[0]] = true
		t.Run(fx.File, func(t *testing.T) {
			a, err := ReadFile(filepath.Join("testdata/fixtures", fx.File))
			if err != nil {
				t.Fatal(err)
			}
			want := &Array{DType: fx.DType, Shape: fx.Shape, Data: parseValues(t, fx.DType, fx.Values)}
			sameArray(t, a, want)
		})
	}
	if len(versions) != 3 {
		t.Fatalf("fixtures cover versions %v, want 1, 2 and 3", versions)
	}
}

func parseValues(t *testing.T, dtype string, vals []json.RawMessage) any {
	t.Helper()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	switch dtype {
	case Float32:
		out := make([]float32, len(vals))
		for i, v := range vals {
			f, err := strconv.ParseFloat(string(v), 64)
			must(err)
			out[i] = float32(f)
		}
		return out
	case Float64:
		out := make([]float64, len(vals))
		for i, v := range vals {
			f, err := strconv.ParseFloat(string(v), 64)
			must(err)
			out[i] = f
		}
		return out
	case Int64, Int32, Uint8:
		out := make([]int64, len(vals))
		for i, v := range vals {
			n, err := strconv.ParseInt(string(v), 10, 64)
			must(err)
			out[i] = n
		}
		switch dtype {
		case Int32:
			return conv[int32](out)
		case Uint8:
			return conv[uint8](out)
		}
		return out
	case Bool:
		out := make([]bool, len(vals))
		for i, v := range vals {
			must(json.Unmarshal(v, &out[i]))
		}
		return out
	}
	t.Fatalf("unknown dtype %s", dtype)
	return nil
}

// numpyPython returns a python3 with numpy, or skips loudly.
func numpyPython(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Skipf("SKIPPING numpy interop check: %s not found (install python3-numpy)", py)
	}
	if out, err := exec.Command(py, "-c", "import numpy").CombinedOutput(); err != nil {
		t.Skipf("SKIPPING numpy interop check: %s cannot import numpy (apt-get install -y python3-numpy): %v %s", py, err, out)
	}
	return py
}

// TestNumpyReadsOurFiles writes files from Go and has real numpy check them.
func TestNumpyReadsOurFiles(t *testing.T) {
	py := numpyPython(t)
	dir := t.TempDir()
	type entry struct {
		File    string   `json:"file"`
		Version []int    `json:"version"`
		DType   string   `json:"dtype"`
		Shape   []int    `json:"shape"`
		Bits    []uint64 `json:"bits"`
		Values  any      `json:"values"`
	}
	var manifest []entry
	for name, a := range sampleArrays() {
		file := name + ".npy"
		if err := WriteFile(filepath.Join(dir, file), a); err != nil {
			t.Fatal(err)
		}
		e := entry{File: file, Version: []int{1, 0}, DType: a.DType, Shape: a.Shape}
		if e.Shape == nil {
			e.Shape = []int{}
		}
		switch a.DType {
		case Float32, Float64:
			e.Bits = append([]uint64{}, bitsOf(a.Data)...)
		case Bool:
			e.Values = a.Data
		default:
			v, err := a.Int64s()
			if err != nil {
				t.Fatal(err)
			}
			e.Values = append([]int64{}, v...)
		}
		manifest = append(manifest, e)
	}
	mj, _ := json.Marshal(manifest)
	mp := filepath.Join(dir, "manifest.json")
	os.WriteFile(mp, mj, 0o644)
	out, err := exec.Command(py, "testdata/check.py", mp).CombinedOutput()
	if err != nil {
		t.Fatalf("numpy check failed: %v\n%s", err, out)
	}
	t.Logf("%s", bytes.TrimSpace(out))
}

// array wraps data as an Array of dtype dt (1-d unless a shape is given), for the dtypes that only
// tests build (the program writes float32 embeddings and int64 labels: FromFloat32, FromInt64).
func array[T any](dt string, data []T, shape ...int) *Array {
	return &Array{DType: dt, Shape: shapeOr(len(data), shape), Data: data}
}
