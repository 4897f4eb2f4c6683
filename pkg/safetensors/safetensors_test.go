package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func sampleFile() *File {
	return &File{
		Tensors: map[string]Tensor{
			"w":       tensorOf(F32, []float32{0, -1.5, 3.25, 1e-7, 65504, float32(math.Inf(-1))}, 2, 3),
			"b":       tensorOf(F64, []float64{math.Pi, -0.0, 1e300}),
			"ids":     tensorOf(I64, []int64{math.MaxInt64, math.MinInt64, 0, -1}, 2, 2),
			"i32":     tensorOf(I32, []int32{math.MaxInt32, math.MinInt32, 7}),
			"u8":      tensorOf(U8, []uint8{0, 1, 254, 255}, 2, 1, 2),
			"mask":    tensorOf(BOOL, []bool{true, false, true}),
			"bf":      tensorOf(BF16, bf16(1, -3.140625, 1e30)),
			"half":    {DType: F16, Shape: []int{3}, Data: []byte{0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00}},
			"i8":      {DType: I8, Shape: []int{2}, Data: []byte{0x80, 0x7f}},
			"i16":     {DType: I16, Shape: []int{1}, Data: []byte{0x00, 0x80}},
			"u16":     {DType: U16, Shape: []int{1}, Data: []byte{0xff, 0xff}},
			"u32":     {DType: U32, Shape: []int{1}, Data: []byte{0xff, 0xff, 0xff, 0xff}},
			"u64":     {DType: U64, Shape: []int{1}, Data: []byte{1, 0, 0, 0, 0, 0, 0, 0}},
			"scalar":  {DType: F32, Shape: []int{}, Data: []byte{0, 0, 0x20, 0x40}},
			"empty":   tensorOf(F32, nil, 0, 4),
			"z":       tensorOf(I64, nil, 3, 0),
			"uni☃ <>": tensorOf(U8, []uint8{9}),
		},
		Metadata: map[string]string{"format": "pt", "note": "héllo <&> \"q\"\n"},
	}
}

func sameFile(t *testing.T, got, want *File) {
	t.Helper()
	if len(got.Metadata) != len(want.Metadata) || (len(want.Metadata) > 0 && !reflect.DeepEqual(got.Metadata, want.Metadata)) {
		t.Fatalf("metadata %v, want %v", got.Metadata, want.Metadata)
	}
	if len(got.Tensors) != len(want.Tensors) {
		t.Fatalf("%d tensors, want %d", len(got.Tensors), len(want.Tensors))
	}
	for name, w := range want.Tensors {
		g, ok := got.Tensors[name]
		if !ok {
			t.Fatalf("missing tensor %q", name)
		}
		if g.DType != w.DType || fmt.Sprint(g.Shape) != fmt.Sprint(w.Shape) || !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("tensor %q: got %s%v %x, want %s%v %x", name, g.DType, g.Shape, g.Data, w.DType, w.Shape, w.Data)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	want := sampleFile()
	b, err := Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	if n%8 != 0 {
		t.Fatalf("header length %d not a multiple of 8", n)
	}
	got, err := Read(b)
	if err != nil {
		t.Fatal(err)
	}
	sameFile(t, got, want)

	got, err = ReadAt(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	sameFile(t, got, want)

	p := filepath.Join(t.TempDir(), "m.safetensors")
	if err := WriteFile(p, want); err != nil {
		t.Fatal(err)
	}
	got, err = ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sameFile(t, got, want)
	onDisk, _ := os.ReadFile(p)
	if !bytes.Equal(onDisk, b) {
		t.Fatal("WriteFile and Marshal differ")
	}
	// Deterministic: map iteration order must not leak into the output.
	for i := 0; i < 20; i++ {
		again, _ := Marshal(sampleFile())
		if !bytes.Equal(again, b) {
			t.Fatal("Marshal is not deterministic")
		}
	}
}

func TestEmptyFile(t *testing.T) {
	b, err := Marshal(&File{})
	if err != nil {
		t.Fatal(err)
	}
	if string(b[8:]) != "{}      " {
		t.Fatalf("got %q", b[8:])
	}
	f, err := Read(b)
	if err != nil || len(f.Tensors) != 0 || f.Metadata != nil {
		t.Fatalf("Read = %+v, %v", f, err)
	}
}

// TestWriteOrderAligned checks the reference writer's order (large dtypes
// first, then by name) and that it leaves every tensor naturally aligned.
func TestWriteOrderAligned(t *testing.T) {
	b, err := Marshal(sampleFile())
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		t.Fatal(err)
	}
	for name, raw := range hdr {
		if name == metadataKey {
			continue
		}
		var ri rawInfo
		json.Unmarshal(raw, &ri)
		size, _ := DTypeSize(*ri.DType)
		if (8+n+ri.DataOffsets[0])%uint64(size) != 0 {
			t.Errorf("%s (%s) at file offset %d is not aligned", name, *ri.DType, 8+n+ri.DataOffsets[0])
		}
	}
	want := `{"__metadata__":{"format":"pt","note":"héllo <&> \"q\"\n"},"u64":`
	if !strings.HasPrefix(string(b[8:]), want) {
		t.Fatalf("header starts %q, want %q", b[8:8+len(want)], want)
	}
}

// rawFile builds a file from a literal header and data section.
func rawFile(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func TestBadInput(t *testing.T) {
	one := `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"short", []byte{1, 2, 3}, "too short"},
		{"huge header len", binary.LittleEndian.AppendUint64(nil, 1<<62), "exceeds limit"},
		{"header past end", binary.LittleEndian.AppendUint64(nil, 100), "exceeds file size"},
		{"not json", rawFile("nope", nil), "bad header JSON"},
		{"not object", rawFile(`[1,2]`, nil), "not a JSON object"},
		{"bad utf8", rawFile("{\"\xff\":1}", nil), "UTF-8"},
		{"trailing", rawFile(`{}{}`, nil), "trailing data"},
		{"truncated json", rawFile(`{"a":{"dtype":"F32"`, nil), "bad header"},
		{"dup name", rawFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, []byte{1, 2}), "duplicate tensor name \"a\""},
		{"bad metadata", rawFile(`{"__metadata__":{"k":1}}`, nil), "__metadata__"},
		{"missing field", rawFile(`{"a":{"dtype":"F32","shape":[1]}}`, make([]byte, 4)), "needs dtype, shape and data_offsets"},
		{"entry not object", rawFile(`{"a":3}`, nil), "bad header entry"},
		{"bad dtype", rawFile(`{"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), "unsupported dtype \"Q7\""},
		{"neg shape", rawFile(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, make([]byte, 4)), "negative dimension"},
		{"float shape", rawFile(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, make([]byte, 4)), "bad header entry"},
		{"3 offsets", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, make([]byte, 4)), "2 entries"},
		{"neg offset", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, make([]byte, 4)), "bad header entry"},
		{"huge offset", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551615,0]}}`, nil), "out of range"},
		{"end before begin", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}`, make([]byte, 4)), "end before begin"},
		{"size mismatch", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 4)), "needs 8 bytes"},
		{"gap", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)), "gap"},
		{"overlap", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}`, make([]byte, 6)), "overlap"},
		{"truncated data", rawFile(one, make([]byte, 3)), "truncated"},
		{"extra data", rawFile(one, make([]byte, 5)), "describes only 4"},
		{"shape overflow", rawFile(`{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`, nil), "too large"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Read(c.in)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Read err = %v, want it to contain %q", err, c.want)
			}
			_, err2 := ReadAt(bytes.NewReader(c.in), int64(len(c.in)))
			if err2 == nil {
				t.Fatalf("ReadAt accepted what Read rejected (%v)", err)
			}
		})
	}
}

func TestReadFileErrorsNameFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.safetensors")
	b, _ := Marshal(sampleFile())
	os.WriteFile(p, b[:len(b)-1], 0o644)
	if _, err := ReadFile(p); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("err = %v", err)
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}

func TestWriteRejectsInvalid(t *testing.T) {
	for name, f := range map[string]*File{
		"nil":       nil,
		"reserved":  {Tensors: map[string]Tensor{metadataKey: tensorOf(U8, []uint8{1})}},
		"bad dtype": {Tensors: map[string]Tensor{"a": {DType: "F128", Shape: []int{1}, Data: make([]byte, 16)}}},
		"wrong len": {Tensors: map[string]Tensor{"a": {DType: F32, Shape: []int{2}, Data: make([]byte, 4)}}},
		"neg dim":   {Tensors: map[string]Tensor{"a": {DType: U8, Shape: []int{-1}}}},
	} {
		if _, err := Marshal(f); err == nil {
			t.Errorf("%s: Marshal succeeded", name)
		}
		p := filepath.Join(t.TempDir(), "x.safetensors")
		if err := WriteFile(p, f); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: WriteFile err = %v", name, err)
		}
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: file created on error", name)
		}
	}
}

// pythonFixture is what testdata/st_py.py writes to python.safetensors.
func pythonFixture() *File {
	return &File{
		Tensors: map[string]Tensor{
			"weight": tensorOf(F32, []float32{0, -1.5, 3.25, 1e-7, 65504, float32(math.Copysign(0, -1))}, 2, 3),
			"bias":   tensorOf(F64, []float64{1e300, -2.5e-300, math.Pi}),
			"ids":    tensorOf(I64, []int64{math.MaxInt64, math.MinInt64, 0, -1}, 2, 2),
			"idx32":  tensorOf(I32, []int32{math.MaxInt32, math.MinInt32, 7, -7}),
			"mask":   tensorOf(BOOL, []bool{true, false, false, true, true}),
			"bytes":  tensorOf(U8, []uint8{0, 32, 64, 96, 128, 160, 192, 224}, 2, 2, 2),
			// 1, -2, 65504, and 6e-8 rounded to the nearest subnormal (1 ulp).
			"half":   {DType: F16, Shape: []int{4}, Data: []byte{0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00}},
			"brain":  tensorOf(BF16, bf16(1, -3.140625, 1e30)),
			"scalar": {DType: F32, Shape: []int{}, Data: tensorOf(F32, []float32{2.5}).Data},
			"empty":  tensorOf(F32, nil, 0, 4),
		},
		Metadata: map[string]string{"format": "pt", "note": "héllo <&> \"quoted\""},
	}
}

// TestPythonFixture reads a file written by the Python helper and checks
// that our writer reproduces it byte for byte.
func TestPythonFixture(t *testing.T) {
	checkPythonFile(t, "testdata/python.safetensors")
}

func checkPythonFile(t *testing.T, path string) {
	t.Helper()
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := pythonFixture()
	sameFile(t, got, want)
	raw, _ := os.ReadFile(path)
	ours, err := Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours, raw) {
		t.Fatalf("re-encoding differs from the Python writer:\nours:   %q\npython: %q", ours[:min(len(ours), 300)], raw[:min(len(raw), 300)])
	}
}

func python(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Skipf("SKIPPING Python interop check: %s not found (install python3-numpy)", py)
	}
	if out, err := exec.Command(py, "-c", "import numpy").CombinedOutput(); err != nil {
		t.Skipf("SKIPPING Python interop check: %s cannot import numpy (apt-get install -y python3-numpy): %v %s", py, err, out)
	}
	return py
}

// TestRealSafetensorsPackage runs only where the Python safetensors package
// is importable; it is not packaged for Debian, so usually this skips.
func TestRealSafetensorsPackage(t *testing.T) {
	py := python(t)
	if out, err := exec.Command(py, "-c", "import safetensors.numpy").CombinedOutput(); err != nil {
		t.Skipf("SKIPPING check against the real safetensors package: %s cannot import safetensors.numpy (not packaged for Debian; pip install safetensors): %s", py, lastLine(out))
	}
	dir := t.TempDir()
	ours := filepath.Join(dir, "go.safetensors")
	f := pythonFixture()
	if err := WriteFile(ours, f); err != nil {
		t.Fatal(err)
	}
	theirs := filepath.Join(dir, "py.safetensors")
	script := `
import sys, numpy as np
from safetensors.numpy import load_file, save_file
d = load_file(sys.argv[1])
assert d["weight"].dtype == np.float32 and d["weight"].shape == (2, 3), d["weight"]
assert d["weight"][0, 1] == -1.5 and d["ids"][0, 0] == 2**63 - 1
assert d["mask"].dtype == np.bool_ and d["mask"].tolist() == [True, False, False, True, True]
assert d["half"].dtype == np.float16 and d["half"][2] == 65504
assert d["scalar"].shape == () and d["scalar"] == 2.5 and d["empty"].shape == (0, 4)
del d["brain"]  # numpy has no bfloat16
save_file(d, sys.argv[2], metadata={"format": "pt", "note": "h\u00e9llo <&> \"quoted\""})
`
	if out, err := exec.Command(py, "-c", script, ours, theirs).CombinedOutput(); err != nil {
		t.Fatalf("safetensors package rejected our file: %v\n%s", err, out)
	}
	got, err := ReadFile(theirs)
	if err != nil {
		t.Fatal(err)
	}
	delete(f.Tensors, "brain")
	sameFile(t, got, f)
}

// TestPythonReadsOurFiles has the independent Python reader check a file we
// wrote, and checks we read what the Python writer writes now.
func TestPythonReadsOurFiles(t *testing.T) {
	py := python(t)
	dir := t.TempDir()
	f := sampleFile()
	p := filepath.Join(dir, "go.safetensors")
	if err := WriteFile(p, f); err != nil {
		t.Fatal(err)
	}
	type tm struct {
		DType  string `json:"dtype"`
		Shape  []int  `json:"shape"`
		Hex    string `json:"hex"`
		Values any    `json:"values,omitempty"`
	}
	manifest := struct {
		Metadata map[string]string `json:"metadata"`
		Tensors  map[string]tm     `json:"tensors"`
	}{f.Metadata, map[string]tm{}}
	for name, tn := range f.Tensors {
		e := tm{DType: tn.DType, Shape: append([]int{}, tn.Shape...), Hex: hex.EncodeToString(tn.Data)}
		switch v := valuesOf(t, name, tn).(type) {
		case []float64:
			if !slicesHasInf(v) { // JSON cannot carry infinities
				e.Values = v
			}
		default:
			e.Values = v
		}
		manifest.Tensors[name] = e
	}
	mj, _ := json.Marshal(manifest)
	mp := filepath.Join(dir, "manifest.json")
	os.WriteFile(mp, mj, 0o644)
	out, err := exec.Command(py, "testdata/st_py.py", "check", p, mp).CombinedOutput()
	if err != nil {
		t.Fatalf("Python check failed: %v\n%s", err, out)
	}
	t.Logf("%s", bytes.TrimSpace(out))

	pyFile := filepath.Join(dir, "py.safetensors")
	if out, err := exec.Command(py, "testdata/st_py.py", "write", pyFile).CombinedOutput(); err != nil {
		t.Fatalf("Python write failed: %v\n%s", err, out)
	}
	checkPythonFile(t, pyFile)
}

func slicesHasInf(v []float64) bool {
	for _, x := range v {
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return true
		}
	}
	return false
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// tensorOf encodes data (a slice of a fixed-size type, or nil) little-endian as a tensor of dtype dt,
// 1-d unless a shape is given.
func tensorOf(dt string, data any, shape ...int) Tensor {
	var b bytes.Buffer
	n := 0
	if data != nil {
		n = reflect.ValueOf(data).Len()
		if err := binary.Write(&b, binary.LittleEndian, data); err != nil {
			panic(err)
		}
	}
	if len(shape) == 0 {
		shape = []int{n}
	}
	return Tensor{DType: dt, Shape: shape, Data: b.Bytes()}
}

// bf16 rounds float32 values to bfloat16 bits, to nearest even, as torch and testdata/st_py.py do.
func bf16(values ...float32) []uint16 {
	out := make([]uint16, len(values))
	for i, v := range values {
		b := math.Float32bits(v)
		out[i] = uint16((b + 0x7fff + (b>>16)&1) >> 16)
	}
	return out
}

// halfValues are the values the sample's F16 tensor was written to hold (1, -2, the smallest subnormal).
var halfValues = []float64{1, -2, math.Ldexp(1, -24)}

// valuesOf is what tensor name of sampleFile holds, for the Python reader to compare with: decoded
// from the little-endian bytes for the plain dtypes, bfloat16 as the top half of a float32, and the
// intended values for the one F16 tensor.
func valuesOf(t *testing.T, name string, tn Tensor) any {
	t.Helper()
	read := func(dst any) {
		if err := binary.Read(bytes.NewReader(tn.Data), binary.LittleEndian, dst); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	n := len(tn.Data) / dtypeSize(t, tn.DType)
	floats := func(v any) []float64 {
		rv := reflect.ValueOf(v)
		out := make([]float64, rv.Len())
		for i := range out {
			out[i] = rv.Index(i).Convert(reflect.TypeOf(float64(0))).Float()
		}
		return out
	}
	ints := func(v any) []int64 {
		rv := reflect.ValueOf(v)
		out := make([]int64, rv.Len())
		for i := range out {
			out[i] = rv.Index(i).Convert(reflect.TypeOf(int64(0))).Int()
		}
		return out
	}
	switch tn.DType {
	case F16:
		if name != "half" {
			t.Fatalf("%s: F16 values unknown", name)
		}
		return halfValues
	case BF16:
		v := make([]uint16, n)
		read(v)
		out := make([]float64, n)
		for i, b := range v {
			out[i] = float64(math.Float32frombits(uint32(b) << 16))
		}
		return out
	case BOOL:
		v := make([]bool, n)
		read(v)
		return v
	}
	v := reflect.MakeSlice(reflect.SliceOf(goTypes[tn.DType]), n, n).Interface()
	read(v)
	if tn.DType == F32 || tn.DType == F64 {
		return floats(v)
	}
	return ints(v)
}

var goTypes = map[string]reflect.Type{F32: reflect.TypeOf(float32(0)), F64: reflect.TypeOf(float64(0)),
	I8: reflect.TypeOf(int8(0)), I16: reflect.TypeOf(int16(0)), I32: reflect.TypeOf(int32(0)), I64: reflect.TypeOf(int64(0)),
	U8: reflect.TypeOf(uint8(0)), U16: reflect.TypeOf(uint16(0)), U32: reflect.TypeOf(uint32(0)), U64: reflect.TypeOf(uint64(0))}

func dtypeSize(t *testing.T, dt string) int {
	switch dt {
	case F16, BF16:
		return 2
	case BOOL:
		return 1
	}
	ty, ok := goTypes[dt]
	if !ok {
		t.Fatalf("dtype %s not in the test's table", dt)
	}
	return int(ty.Size())
}
