// Package npy reads and writes NumPy .npy files.
//
// Reading supports format versions 1.0, 2.0 and 3.0, the dtypes float32,
// float64, int64, int32, uint8 and bool in either byte order, and
// fortran_order=True files, which are transposed to C order on read so
// callers only ever see C-order data. Writing always produces little-endian,
// C-order data in version 1.0, or 2.0 when the header does not fit 1.0.
package npy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/spreadtrain/spreadtrain/internal/atomicfile"
)

// DType names used in Array.DType.
const (
	Float32 = "float32"
	Float64 = "float64"
	Int64   = "int64"
	Int32   = "int32"
	Uint8   = "uint8"
	Bool    = "bool"
)

// Array is an n-dimensional array in C (row-major) order. Data holds a
// []float32, []float64, []int64, []int32, []uint8 or []bool matching DType,
// with len(Data) equal to the product of Shape (1 for a 0-d array).
type Array struct {
	DType string
	Shape []int
	Data  any
}

const magic = "\x93NUMPY"

// maxHeaderLen bounds the header we are willing to allocate. Real headers are
// well under 1 KiB; numpy itself refuses more than 10000 bytes by default.
const maxHeaderLen = 1 << 20

// align is the total header alignment numpy uses (ARRAY_ALIGN).
const align = 64

type dtypeInfo struct {
	name string
	size int
	kind byte // 'f', 'i', 'u', 'b'
}

var dtypes = []dtypeInfo{
	{Float32, 4, 'f'},
	{Float64, 8, 'f'},
	{Int64, 8, 'i'},
	{Int32, 4, 'i'},
	{Uint8, 1, 'u'},
	{Bool, 1, 'b'},
}

func lookupDType(name string) (dtypeInfo, bool) {
	for _, d := range dtypes {
		if d.name == name {
			return d, true
		}
	}
	return dtypeInfo{}, false
}

// parseDescr maps a numpy descr such as "<f4" to a dtype and byte order.
func parseDescr(descr string) (dtypeInfo, binary.ByteOrder, error) {
	if len(descr) < 3 {
		return dtypeInfo{}, nil, fmt.Errorf("npy: unsupported dtype %q", descr)
	}
	var order binary.ByteOrder
	switch descr[0] {
	case '<':
		order = binary.LittleEndian
	case '>':
		order = binary.BigEndian
	case '|':
		order = nil // only valid for 1-byte types, checked below
	default:
		return dtypeInfo{}, nil, fmt.Errorf("npy: unsupported dtype %q (byte order must be '<', '>' or '|')", descr)
	}
	kind := descr[1]
	size, err := strconv.Atoi(descr[2:])
	if err != nil {
		return dtypeInfo{}, nil, fmt.Errorf("npy: unsupported dtype %q", descr)
	}
	for _, d := range dtypes {
		if d.kind == kind && d.size == size {
			if order == nil {
				if size != 1 {
					return dtypeInfo{}, nil, fmt.Errorf("npy: dtype %q needs an explicit byte order", descr)
				}
				order = binary.LittleEndian
			}
			return d, order, nil
		}
	}
	return dtypeInfo{}, nil, fmt.Errorf("npy: unsupported dtype %q (supported: <f4 <f8 <i8 <i4 |u1 |b1 and their big-endian forms)", descr)
}

func descrOf(d dtypeInfo) string {
	if d.size == 1 {
		return fmt.Sprintf("|%c%d", d.kind, d.size)
	}
	return fmt.Sprintf("<%c%d", d.kind, d.size)
}

// numElements multiplies the dims, rejecting negatives and overflow so a
// hostile header cannot make us compute a bogus allocation size.
func numElements(shape []int, itemSize int) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("npy: negative dimension in shape %v", shape)
		}
		if d != 0 && n > math.MaxInt/d {
			return 0, fmt.Errorf("npy: shape %v is too large", shape)
		}
		n *= d
	}
	if itemSize > 0 && n > math.MaxInt/itemSize {
		return 0, fmt.Errorf("npy: shape %v is too large", shape)
	}
	return n, nil
}

// Len returns the number of elements the shape describes.
func (a *Array) Len() int {
	n := 1
	for _, d := range a.Shape {
		n *= d
	}
	return n
}

func dataLen(data any) (string, int, bool) {
	switch v := data.(type) {
	case []float32:
		return Float32, len(v), true
	case []float64:
		return Float64, len(v), true
	case []int64:
		return Int64, len(v), true
	case []int32:
		return Int32, len(v), true
	case []uint8:
		return Uint8, len(v), true
	case []bool:
		return Bool, len(v), true
	}
	return "", 0, false
}

// validate checks that DType, Data and Shape agree.
func (a *Array) validate() (dtypeInfo, int, error) {
	if a == nil {
		return dtypeInfo{}, 0, errors.New("npy: nil array")
	}
	d, ok := lookupDType(a.DType)
	if !ok {
		return dtypeInfo{}, 0, fmt.Errorf("npy: unsupported dtype %q", a.DType)
	}
	goType, n, ok := dataLen(a.Data)
	if !ok {
		return d, 0, fmt.Errorf("npy: unsupported data type %T", a.Data)
	}
	if goType != a.DType {
		return d, 0, fmt.Errorf("npy: dtype %s does not match data of type %T", a.DType, a.Data)
	}
	want, err := numElements(a.Shape, d.size)
	if err != nil {
		return d, 0, err
	}
	if n != want {
		return d, 0, fmt.Errorf("npy: shape %v needs %d elements, data has %d", a.Shape, want, n)
	}
	return d, n, nil
}

// ---- reading ----

// Read decodes one .npy array from r. It reads exactly the header and the
// array data, so several arrays written back to back can be read in turn.
func Read(r io.Reader) (*Array, error) {
	return read(r, -1)
}

// ReadFile reads the .npy file at path. Errors name the file.
func ReadFile(path string) (*Array, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size := int64(-1)
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	a, err := read(bufio.NewReaderSize(f, 1<<20), size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

type header struct {
	descr   string
	fortran bool
	shape   []int
}

// read decodes an array; size is the total stream size when known (-1
// otherwise) and lets us allocate the result up front.
func read(r io.Reader, size int64) (*Array, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, fmt.Errorf("npy: reading magic: %w", noEOF(err))
	}
	if string(pre[:6]) != magic {
		return nil, fmt.Errorf("npy: bad magic %q, not a .npy file", pre[:6])
	}
	major, minor := pre[6], pre[7]
	var hlen int
	consumed := int64(8)
	switch major {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("npy: reading header length: %w", noEOF(err))
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
		consumed += 2
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("npy: reading header length: %w", noEOF(err))
		}
		n := binary.LittleEndian.Uint32(b[:])
		if n > maxHeaderLen {
			return nil, fmt.Errorf("npy: header length %d exceeds limit %d", n, maxHeaderLen)
		}
		hlen = int(n)
		consumed += 4
	default:
		return nil, fmt.Errorf("npy: unsupported format version %d.%d", major, minor)
	}
	if minor != 0 {
		return nil, fmt.Errorf("npy: unsupported format version %d.%d", major, minor)
	}
	hbuf := make([]byte, hlen)
	if _, err := io.ReadFull(r, hbuf); err != nil {
		return nil, fmt.Errorf("npy: reading %d-byte header: %w", hlen, noEOF(err))
	}
	consumed += int64(hlen)
	h, err := parseHeader(hbuf)
	if err != nil {
		return nil, err
	}
	d, order, err := parseDescr(h.descr)
	if err != nil {
		return nil, err
	}
	n, err := numElements(h.shape, d.size)
	if err != nil {
		return nil, err
	}
	nbytes := int64(n) * int64(d.size)
	if size >= 0 && size-consumed < nbytes {
		return nil, fmt.Errorf("npy: truncated data: shape %v of %s needs %d bytes, file has %d", h.shape, d.name, nbytes, size-consumed)
	}
	data, err := readData(r, d, order, n, size >= 0)
	if err != nil {
		return nil, err
	}
	a := &Array{DType: d.name, Shape: h.shape, Data: data}
	if h.fortran && len(h.shape) > 1 {
		a.Data = fortranToC(a.Data, h.shape)
	}
	return a, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// chunkBytes is how much raw data is decoded at a time.
const chunkBytes = 1 << 20

// readData decodes n elements. When the stream size is unknown, the result
// grows with the data actually read instead of trusting the header, so a
// lying header on a short stream cannot force a huge allocation.
func readData(r io.Reader, d dtypeInfo, order binary.ByteOrder, n int, sizeKnown bool) (any, error) {
	capHint := n
	if !sizeKnown {
		capHint = min(n, chunkBytes/d.size)
	}
	var out any
	switch d.name {
	case Float32:
		out = make([]float32, 0, capHint)
	case Float64:
		out = make([]float64, 0, capHint)
	case Int64:
		out = make([]int64, 0, capHint)
	case Int32:
		out = make([]int32, 0, capHint)
	case Uint8:
		out = make([]uint8, 0, capHint)
	case Bool:
		out = make([]bool, 0, capHint)
	}
	buf := make([]byte, min(n*d.size, chunkBytes))
	for done := 0; done < n; {
		k := min(n-done, len(buf)/d.size)
		b := buf[:k*d.size]
		if got, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("npy: truncated data: read %d of %d bytes: %w", done*d.size+got, n*d.size, noEOF(err))
		}
		out = decodeAppend(out, b, d, order)
		done += k
	}
	return out, nil
}

func decodeAppend(out any, b []byte, d dtypeInfo, order binary.ByteOrder) any {
	switch v := out.(type) {
	case []float32:
		for i := 0; i < len(b); i += 4 {
			v = append(v, math.Float32frombits(order.Uint32(b[i:])))
		}
		return v
	case []float64:
		for i := 0; i < len(b); i += 8 {
			v = append(v, math.Float64frombits(order.Uint64(b[i:])))
		}
		return v
	case []int64:
		for i := 0; i < len(b); i += 8 {
			v = append(v, int64(order.Uint64(b[i:])))
		}
		return v
	case []int32:
		for i := 0; i < len(b); i += 4 {
			v = append(v, int32(order.Uint32(b[i:])))
		}
		return v
	case []uint8:
		return append(v, b...)
	case []bool:
		for _, c := range b {
			v = append(v, c != 0)
		}
		return v
	}
	panic("unreachable")
}

// fortranToC reorders column-major data of the given shape into row-major.
func fortranToC(data any, shape []int) any {
	switch v := data.(type) {
	case []float32:
		return transpose(v, shape)
	case []float64:
		return transpose(v, shape)
	case []int64:
		return transpose(v, shape)
	case []int32:
		return transpose(v, shape)
	case []uint8:
		return transpose(v, shape)
	case []bool:
		return transpose(v, shape)
	}
	return data
}

func transpose[T any](src []T, shape []int) []T {
	dst := make([]T, len(src))
	if len(src) == 0 {
		return dst
	}
	nd := len(shape)
	// Fortran strides (in elements) for each axis.
	fstride := make([]int, nd)
	s := 1
	for i := 0; i < nd; i++ {
		fstride[i] = s
		s *= shape[i]
	}
	idx := make([]int, nd)
	off := 0
	for i := range dst {
		dst[i] = src[off]
		// Advance the C-order multi-index (last axis fastest).
		for ax := nd - 1; ax >= 0; ax-- {
			idx[ax]++
			off += fstride[ax]
			if idx[ax] < shape[ax] {
				break
			}
			off -= idx[ax] * fstride[ax]
			idx[ax] = 0
		}
	}
	return dst
}

// ---- header parsing ----

// parseHeader parses the Python dict literal numpy writes, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
func parseHeader(b []byte) (header, error) {
	var h header
	p := &litParser{s: strings.TrimRight(string(b), " \t\r\n\x00")}
	v, err := p.value(0)
	if err != nil {
		return h, fmt.Errorf("npy: bad header %q: %w", clip(string(b)), err)
	}
	p.skipSpace()
	if p.i != len(p.s) {
		return h, fmt.Errorf("npy: bad header %q: trailing data", clip(string(b)))
	}
	dict, ok := v.(map[string]any)
	if !ok {
		return h, fmt.Errorf("npy: bad header %q: not a dict", clip(string(b)))
	}
	if len(dict) != 3 {
		return h, fmt.Errorf("npy: bad header %q: want exactly keys descr, fortran_order, shape", clip(string(b)))
	}
	switch descr := dict["descr"].(type) {
	case string:
		h.descr = descr
	case nil:
		return h, fmt.Errorf("npy: bad header %q: missing descr", clip(string(b)))
	default:
		return h, fmt.Errorf("npy: unsupported dtype: structured descr %v", descr)
	}
	fo, ok := dict["fortran_order"].(bool)
	if !ok {
		return h, fmt.Errorf("npy: bad header %q: fortran_order must be True or False", clip(string(b)))
	}
	h.fortran = fo
	tup, ok := dict["shape"].(tuple)
	if !ok {
		return h, fmt.Errorf("npy: bad header %q: shape must be a tuple", clip(string(b)))
	}
	h.shape = make([]int, len(tup))
	for i, e := range tup {
		n, ok := e.(int64)
		if !ok || n < 0 || n > math.MaxInt {
			return h, fmt.Errorf("npy: bad header %q: shape entries must be non-negative ints", clip(string(b)))
		}
		h.shape[i] = int(n)
	}
	return h, nil
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

type tuple []any
type list []any

// litParser parses the small subset of Python literals that appear in npy
// headers: dicts, tuples, lists, strings, ints, True/False/None.
type litParser struct {
	s string
	i int
}

const maxDepth = 16

func (p *litParser) skipSpace() {
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *litParser) errf(format string, args ...any) error {
	return fmt.Errorf("at offset %d: "+format, append([]any{p.i}, args...)...)
}

func (p *litParser) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, p.errf("nested too deeply")
	}
	p.skipSpace()
	if p.i >= len(p.s) {
		return nil, p.errf("unexpected end")
	}
	c := p.s[p.i]
	switch {
	case c == '{':
		return p.dict(depth)
	case c == '(' || c == '[':
		return p.seq(depth)
	case c == '\'' || c == '"':
		return p.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return p.int()
	case strings.HasPrefix(p.s[p.i:], "True"):
		p.i += 4
		return true, nil
	case strings.HasPrefix(p.s[p.i:], "False"):
		p.i += 5
		return false, nil
	case strings.HasPrefix(p.s[p.i:], "None"):
		p.i += 4
		return nil, nil
	}
	return nil, p.errf("unexpected %q", c)
}

func (p *litParser) dict(depth int) (any, error) {
	p.i++ // '{'
	m := map[string]any{}
	for {
		p.skipSpace()
		if p.i < len(p.s) && p.s[p.i] == '}' {
			p.i++
			return m, nil
		}
		k, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		key, ok := k.(string)
		if !ok {
			return nil, p.errf("dict key must be a string")
		}
		if _, dup := m[key]; dup {
			return nil, p.errf("duplicate key %q", key)
		}
		p.skipSpace()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return nil, p.errf("expected ':'")
		}
		p.i++
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		m[key] = v
		p.skipSpace()
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
			continue
		}
		if p.i < len(p.s) && p.s[p.i] == '}' {
			p.i++
			return m, nil
		}
		return nil, p.errf("expected ',' or '}'")
	}
}

func (p *litParser) seq(depth int) (any, error) {
	open := p.s[p.i]
	closeCh := byte(')')
	if open == '[' {
		closeCh = ']'
	}
	p.i++
	var items []any
	sawComma := false
	for {
		p.skipSpace()
		if p.i < len(p.s) && p.s[p.i] == closeCh {
			p.i++
			break
		}
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		items = append(items, v)
		p.skipSpace()
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
			sawComma = true
			continue
		}
		if p.i < len(p.s) && p.s[p.i] == closeCh {
			p.i++
			break
		}
		return nil, p.errf("expected ',' or %q", closeCh)
	}
	if open == '[' {
		return list(items), nil
	}
	// "(3)" is a parenthesized int in Python, not a tuple.
	if len(items) == 1 && !sawComma {
		return items[0], nil
	}
	return tuple(items), nil
}

func (p *litParser) str() (any, error) {
	q := p.s[p.i]
	p.i++
	start := p.i
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case q:
			s := p.s[start:p.i]
			p.i++
			return s, nil
		case '\\':
			return nil, p.errf("escapes in strings are not supported")
		}
		p.i++
	}
	return nil, p.errf("unterminated string")
}

func (p *litParser) int() (any, error) {
	start := p.i
	if p.s[p.i] == '-' {
		p.i++
	}
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	n, err := strconv.ParseInt(p.s[start:p.i], 10, 64)
	if err != nil {
		return nil, p.errf("bad integer %q", p.s[start:p.i])
	}
	// Python 2 era files may write long ints as 3L.
	if p.i < len(p.s) && (p.s[p.i] == 'L' || p.s[p.i] == 'l') {
		p.i++
	}
	return n, nil
}

// ---- writing ----

// headerBytes returns magic, version, length and the padded header dict.
func headerBytes(d dtypeInfo, shape []int) []byte {
	var sb strings.Builder
	sb.WriteString("{'descr': '")
	sb.WriteString(descrOf(d))
	sb.WriteString("', 'fortran_order': False, 'shape': (")
	for i, n := range shape {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(strconv.Itoa(n))
	}
	if len(shape) == 1 {
		sb.WriteByte(',')
	}
	sb.WriteString("), }")
	dict := sb.String()

	build := func(major byte, lenBytes int) []byte {
		pre := len(magic) + 2 + lenBytes
		// +1 for the terminating newline; pad so data starts aligned.
		total := (pre + len(dict) + 1 + align - 1) / align * align
		hlen := total - pre
		out := make([]byte, 0, total)
		out = append(out, magic...)
		out = append(out, major, 0)
		if lenBytes == 2 {
			out = binary.LittleEndian.AppendUint16(out, uint16(hlen))
		} else {
			out = binary.LittleEndian.AppendUint32(out, uint32(hlen))
		}
		out = append(out, dict...)
		for len(out) < total-1 {
			out = append(out, ' ')
		}
		return append(out, '\n')
	}
	if h := build(1, 2); len(h)-10 <= math.MaxUint16 {
		return h
	}
	return build(2, 4)
}

// Write encodes a as a little-endian, C-order .npy array.
func Write(w io.Writer, a *Array) error {
	d, _, err := a.validate()
	if err != nil {
		return err
	}
	if _, err := w.Write(headerBytes(d, a.Shape)); err != nil {
		return err
	}
	return writeData(w, a.Data)
}

func writeData(w io.Writer, data any) error {
	buf := make([]byte, 0, chunkBytes)
	flush := func() error {
		_, err := w.Write(buf)
		buf = buf[:0]
		return err
	}
	full := func() bool { return len(buf) >= chunkBytes-8 }
	var err error
	switch v := data.(type) {
	case []float32:
		for _, x := range v {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(x))
			if full() {
				if err = flush(); err != nil {
					return err
				}
			}
		}
	case []float64:
		for _, x := range v {
			buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(x))
			if full() {
				if err = flush(); err != nil {
					return err
				}
			}
		}
	case []int64:
		for _, x := range v {
			buf = binary.LittleEndian.AppendUint64(buf, uint64(x))
			if full() {
				if err = flush(); err != nil {
					return err
				}
			}
		}
	case []int32:
		for _, x := range v {
			buf = binary.LittleEndian.AppendUint32(buf, uint32(x))
			if full() {
				if err = flush(); err != nil {
					return err
				}
			}
		}
	case []uint8:
		_, err := w.Write(v)
		return err
	case []bool:
		for _, x := range v {
			var c byte
			if x {
				c = 1
			}
			buf = append(buf, c)
			if full() {
				if err = flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// WriteFile writes a to path atomically (temp file in the same directory,
// fsync, rename), so a crash never leaves a truncated .npy behind.
func WriteFile(path string, a *Array) error {
	if _, _, err := a.validate(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := atomicfile.Write(path, 0o644, func(w io.Writer) error { return Write(w, a) }); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Marshal returns the .npy encoding of a.
func Marshal(a *Array) ([]byte, error) {
	var b bytes.Buffer
	if err := Write(&b, a); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
