// Package safetensors reads and writes the safetensors format: an 8-byte
// little-endian header length, a JSON header describing each tensor, then
// the tensors' raw little-endian bytes laid out back to back.
//
// Readers validate everything the reference implementation does (header
// size, offsets contiguous and in range, sizes matching dtype and shape)
// and also reject duplicate tensor names. Writers are deterministic and
// order tensors like the reference writer: larger element types first, then
// by name, which keeps every tensor naturally aligned in the file.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/spreadtrain/spreadtrain/internal/atomicfile"
)

// Supported dtypes.
const (
	BOOL   = "BOOL"
	U8     = "U8"
	I8     = "I8"
	F8E5M2 = "F8_E5M2"
	F8E4M3 = "F8_E4M3"
	I16    = "I16"
	U16    = "U16"
	F16    = "F16"
	BF16   = "BF16"
	I32    = "I32"
	U32    = "U32"
	F32    = "F32"
	F64    = "F64"
	I64    = "I64"
	U64    = "U64"
)

type dtypeInfo struct {
	size int
	rank int // position in the reference Dtype enum; sets write order
}

var dtypes = map[string]dtypeInfo{
	BOOL: {1, 0}, U8: {1, 4}, I8: {1, 5}, F8E5M2: {1, 6}, F8E4M3: {1, 7},
	I16: {2, 11}, U16: {2, 12}, F16: {2, 13}, BF16: {2, 14},
	I32: {4, 15}, U32: {4, 16}, F32: {4, 17},
	F64: {8, 19}, I64: {8, 20}, U64: {8, 21},
}

// DTypeSize returns the element size in bytes of a supported dtype.
func DTypeSize(dtype string) (int, bool) {
	d, ok := dtypes[dtype]
	return d.size, ok
}

// MaxHeaderSize is the largest JSON header accepted, as in the reference
// implementation; it stops a corrupt length from driving a huge allocation.
const MaxHeaderSize = 100_000_000

const metadataKey = "__metadata__"

// Tensor is one tensor: dtype, shape and raw little-endian bytes in C order.
type Tensor struct {
	DType string
	Shape []int
	Data  []byte
}

// File is the content of a .safetensors file.
type File struct {
	Tensors  map[string]Tensor
	Metadata map[string]string
}

// numBytes returns dtype size times the product of shape, failing on
// unknown dtypes, negative dims and overflow.
func numBytes(dtype string, shape []int) (int, error) {
	d, ok := dtypes[dtype]
	if !ok {
		return 0, fmt.Errorf("unsupported dtype %q", dtype)
	}
	n := d.size
	for _, x := range shape {
		if x < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		if x != 0 && n > math.MaxInt/x {
			return 0, fmt.Errorf("shape %v is too large", shape)
		}
		n *= x
	}
	return n, nil
}

// NumElements returns the product of the shape (1 for a scalar).
func (t Tensor) NumElements() int {
	n := 1
	for _, x := range t.Shape {
		n *= x
	}
	return n
}

// ---- reading ----

type entry struct {
	name       string
	dtype      string
	shape      []int
	begin, end int
}

type rawInfo struct {
	DType       *string  `json:"dtype"`
	Shape       *[]int64 `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

// parseHeader decodes and validates the JSON header against a data section
// of dataLen bytes.
func parseHeader(hdr []byte, dataLen int64) ([]entry, map[string]string, error) {
	if !utf8.Valid(hdr) {
		return nil, nil, errors.New("safetensors: header is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors: bad header JSON: %w", err)
	}
	if tok != json.Delim('{') {
		return nil, nil, errors.New("safetensors: header is not a JSON object")
	}
	var (
		entries  []entry
		metadata map[string]string
		seen     = map[string]bool{}
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("safetensors: bad header JSON: %w", err)
		}
		name := tok.(string) // object keys are always strings
		if seen[name] {
			return nil, nil, fmt.Errorf("safetensors: duplicate tensor name %q in header", name)
		}
		seen[name] = true
		if name == metadataKey {
			if err := dec.Decode(&metadata); err != nil {
				return nil, nil, fmt.Errorf("safetensors: __metadata__ must map strings to strings: %w", err)
			}
			continue
		}
		var ri rawInfo
		if err := dec.Decode(&ri); err != nil {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: bad header entry: %w", name, err)
		}
		e, err := ri.entry(name)
		if err != nil {
			return nil, nil, err
		}
		entries = append(entries, e)
	}
	if _, err := dec.Token(); err != nil { // closing '}'
		return nil, nil, fmt.Errorf("safetensors: bad header JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, errors.New("safetensors: trailing data after header JSON")
	}
	if err := validateLayout(entries, dataLen); err != nil {
		return nil, nil, err
	}
	return entries, metadata, nil
}

func (ri rawInfo) entry(name string) (entry, error) {
	e := entry{name: name}
	if ri.DType == nil || ri.Shape == nil || ri.DataOffsets == nil {
		return e, fmt.Errorf("safetensors: tensor %q: header entry needs dtype, shape and data_offsets", name)
	}
	e.dtype = *ri.DType
	if len(ri.DataOffsets) != 2 {
		return e, fmt.Errorf("safetensors: tensor %q: data_offsets must have 2 entries, has %d", name, len(ri.DataOffsets))
	}
	b, en := ri.DataOffsets[0], ri.DataOffsets[1]
	if b > math.MaxInt64 || en > math.MaxInt64 {
		return e, fmt.Errorf("safetensors: tensor %q: data_offsets %v out of range", name, ri.DataOffsets)
	}
	e.begin, e.end = int(b), int(en)
	e.shape = make([]int, len(*ri.Shape))
	for i, x := range *ri.Shape {
		if x < 0 {
			return e, fmt.Errorf("safetensors: tensor %q: negative dimension in shape %v", name, *ri.Shape)
		}
		e.shape[i] = int(x)
	}
	return e, nil
}

// validateLayout checks that the tensors tile [0, dataLen) exactly, in
// offset order, with sizes matching dtype and shape.
func validateLayout(entries []entry, dataLen int64) error {
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(a, b entry) int {
		if a.begin != b.begin {
			return a.begin - b.begin
		}
		return a.end - b.end
	})
	next := 0
	for _, e := range sorted {
		want, err := numBytes(e.dtype, e.shape)
		if err != nil {
			return fmt.Errorf("safetensors: tensor %q: %w", e.name, err)
		}
		if e.end < e.begin {
			return fmt.Errorf("safetensors: tensor %q: data_offsets [%d, %d] end before begin", e.name, e.begin, e.end)
		}
		if e.begin != next {
			if e.begin < next {
				return fmt.Errorf("safetensors: tensor %q: data_offsets [%d, %d] overlap the previous tensor ending at %d", e.name, e.begin, e.end, next)
			}
			return fmt.Errorf("safetensors: tensor %q: data_offsets [%d, %d] leave a gap after offset %d", e.name, e.begin, e.end, next)
		}
		if got := e.end - e.begin; got != want {
			return fmt.Errorf("safetensors: tensor %q: %s%v needs %d bytes, data_offsets [%d, %d] give %d", e.name, e.dtype, e.shape, want, e.begin, e.end, got)
		}
		next = e.end
	}
	if int64(next) != dataLen {
		if int64(next) > dataLen {
			return fmt.Errorf("safetensors: data section has %d bytes, header needs %d (truncated file?)", dataLen, next)
		}
		return fmt.Errorf("safetensors: data section has %d bytes, header describes only %d", dataLen, next)
	}
	return nil
}

// headerLen reads and sanity-checks the 8-byte prefix against the size.
func headerLen(prefix []byte, size int64) (int64, error) {
	if size < 8 {
		return 0, fmt.Errorf("safetensors: file is %d bytes, too short for the 8-byte header length", size)
	}
	n := binary.LittleEndian.Uint64(prefix)
	if n > MaxHeaderSize {
		return 0, fmt.Errorf("safetensors: header length %d exceeds limit %d", n, MaxHeaderSize)
	}
	if int64(n) > size-8 {
		return 0, fmt.Errorf("safetensors: header length %d exceeds file size %d", n, size)
	}
	return int64(n), nil
}

// Read parses a whole safetensors file held in memory. The returned
// tensors' Data slices alias data rather than copying it.
func Read(data []byte) (*File, error) {
	n, err := headerLen(data, int64(len(data)))
	if err != nil {
		return nil, err
	}
	body := data[8+n:]
	entries, md, err := parseHeader(data[8:8+n], int64(len(body)))
	if err != nil {
		return nil, err
	}
	f := &File{Tensors: make(map[string]Tensor, len(entries)), Metadata: md}
	for _, e := range entries {
		f.Tensors[e.name] = Tensor{DType: e.dtype, Shape: e.shape, Data: body[e.begin:e.end:e.end]}
	}
	return f, nil
}

// ReadAt parses a safetensors file of the given size from r, copying each
// tensor out. Useful for files too large to want in one buffer.
func ReadAt(r io.ReaderAt, size int64) (*File, error) {
	var prefix [8]byte
	if size >= 8 {
		if _, err := r.ReadAt(prefix[:], 0); err != nil {
			return nil, fmt.Errorf("safetensors: reading header length: %w", err)
		}
	}
	n, err := headerLen(prefix[:], size)
	if err != nil {
		return nil, err
	}
	hdr := make([]byte, n)
	if _, err := r.ReadAt(hdr, 8); err != nil {
		return nil, fmt.Errorf("safetensors: reading header: %w", err)
	}
	entries, md, err := parseHeader(hdr, size-8-n)
	if err != nil {
		return nil, err
	}
	f := &File{Tensors: make(map[string]Tensor, len(entries)), Metadata: md}
	for _, e := range entries {
		buf := make([]byte, e.end-e.begin)
		if _, err := r.ReadAt(buf, 8+n+int64(e.begin)); err != nil {
			return nil, fmt.Errorf("safetensors: tensor %q: reading data: %w", e.name, err)
		}
		f.Tensors[e.name] = Tensor{DType: e.dtype, Shape: e.shape, Data: buf}
	}
	return f, nil
}

// ReadFile reads the file at path into memory and parses it. Errors name
// the file.
func ReadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Read(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// ---- writing ----

// order returns tensor names in write order: larger dtype rank first (as the
// reference writer), then by name.
func (f *File) order() []string {
	names := make([]string, 0, len(f.Tensors))
	for name := range f.Tensors {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int {
		ra, rb := dtypes[f.Tensors[a].DType].rank, dtypes[f.Tensors[b].DType].rank
		if ra != rb {
			return rb - ra
		}
		return strings.Compare(a, b)
	})
	return names
}

// header builds the padded JSON header for f, validating tensors.
func (f *File) header() ([]byte, []string, error) {
	if f == nil {
		return nil, nil, errors.New("safetensors: nil File")
	}
	names := f.order()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	put := func(v any) {
		enc.Encode(v)           // strings, ints and string maps cannot fail
		b.Truncate(b.Len() - 1) // drop Encode's newline
	}
	b.WriteByte('{')
	if len(f.Metadata) > 0 {
		b.WriteString(`"__metadata__":`)
		put(f.Metadata) // map keys come out sorted
	}
	off := 0
	for i, name := range names {
		t := f.Tensors[name]
		if name == metadataKey {
			return nil, nil, fmt.Errorf("safetensors: tensor name %q is reserved", name)
		}
		want, err := numBytes(t.DType, t.Shape)
		if err != nil {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: %w", name, err)
		}
		if len(t.Data) != want {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: %s%v needs %d bytes, Data has %d", name, t.DType, t.Shape, want, len(t.Data))
		}
		if i > 0 || len(f.Metadata) > 0 {
			b.WriteByte(',')
		}
		put(name)
		b.WriteString(`:{"dtype":`)
		put(t.DType)
		b.WriteString(`,"shape":[`)
		for j, x := range t.Shape {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprint(&b, x)
		}
		fmt.Fprintf(&b, `],"data_offsets":[%d,%d]}`, off, off+want)
		off += want
	}
	b.WriteByte('}')
	// Pad with spaces to a multiple of 8 like the reference writer, so the
	// data section starts 8-byte aligned.
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	if b.Len() > MaxHeaderSize {
		return nil, nil, fmt.Errorf("safetensors: header of %d bytes exceeds limit %d", b.Len(), MaxHeaderSize)
	}
	return b.Bytes(), names, nil
}

// Write encodes f to w.
func Write(w io.Writer, f *File) error {
	hdr, names, err := f.header()
	if err != nil {
		return err
	}
	var prefix [8]byte
	binary.LittleEndian.PutUint64(prefix[:], uint64(len(hdr)))
	if _, err := w.Write(prefix[:]); err != nil {
		return err
	}
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	for _, name := range names {
		if _, err := w.Write(f.Tensors[name].Data); err != nil {
			return err
		}
	}
	return nil
}

// Marshal returns the encoding of f.
func Marshal(f *File) ([]byte, error) {
	var b bytes.Buffer
	if err := Write(&b, f); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteFile writes f to path atomically: temp file in the same directory,
// fsync, rename, fsync of the directory. Errors name the file.
func WriteFile(path string, f *File) error {
	if _, _, err := f.header(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := atomicfile.Write(path, 0o644, func(w io.Writer) error { return Write(w, f) }); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
