// Package tfevents writes TensorBoard event files holding scalar summaries, so that
// `tensorboard --logdir runs/` shows a run's curves live, next to other runs.
//
// An event file is a sequence of records, each
//
//	uint64 length (little-endian) | uint32 masked CRC-32C of the length bytes | data | uint32 masked CRC-32C of data
//
// (TensorFlow's TFRecord framing), whose data is one serialized tensorboard.Event protobuf. The first
// event holds file_version "brain.Event:2"; every later one a wall time, a step and a Summary of
// (tag, simple_value) pairs. The few protobuf fields needed are encoded by hand here, so the package
// has no dependency. Example, for the step-10 loss 0.5 written at wall time 1.5 s:
//
//	Event{wall_time: 1.5, step: 10, summary: {value: [{tag: "loss", simple_value: 0.5}]}}
//	= 09 <1.5 as float64 LE> 10 0a 2a 0d 0a 0b 0a 04 "loss" 15 <0.5 as float32 LE>
//
// A file is only ever appended to: a resumed run starts a new file (the next invocation's own
// events.out.tfevents.<unix>.<hostname>), which is how TensorBoard expects restarts; where the new
// file repeats steps of an older one, TensorBoard keeps the newer points.
package tfevents

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"
)

// FileVersion is the version string of the first event, the one TensorBoard checks.
const FileVersion = "brain.Event:2"

// Writer appends scalar events to one event file.
type Writer struct {
	f    *os.File
	w    *bufio.Writer
	path string
}

// Create starts a new event file in dir, named events.out.tfevents.<unix seconds>.<hostname> after
// now (with a numeric suffix if that name is taken, e.g. by a restart within the same second), and
// writes the file_version event.
func Create(dir string, now time.Time) (*Writer, error) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	base := filepath.Join(dir, "events.out.tfevents."+strconv.FormatInt(now.Unix(), 10)+"."+host)
	path := base
	var f *os.File
	for i := 1; ; i++ {
		f, err = os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil || !os.IsExist(err) || i > 100 {
			break
		}
		path = base + "." + strconv.Itoa(i)
	}
	if err != nil {
		return nil, fmt.Errorf("tfevents: create the TensorBoard event file in %s: %w", dir, err)
	}
	w := &Writer{f: f, w: bufio.NewWriter(f), path: path}
	if err := w.writeRecord(encodeEvent(now, 0, FileVersion, nil)); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// Path is the event file's path.
func (w *Writer) Path() string { return w.path }

// Scalars writes one event holding every value of step, tags in sorted order (so a file's bytes
// depend only on what was logged), and hands it to the OS so that TensorBoard sees it at once;
// Sync makes the events durable.
func (w *Writer) Scalars(step int64, wall time.Time, values map[string]float64) error {
	tags := make([]string, 0, len(values))
	for k := range values {
		tags = append(tags, k)
	}
	sort.Strings(tags)
	vals := make([]scalar, len(tags))
	for i, k := range tags {
		vals[i] = scalar{tag: k, value: float32(values[k])}
	}
	if err := w.writeRecord(encodeEvent(wall, step, "", vals)); err != nil {
		return err
	}
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("tfevents: write %s: %w", w.path, err)
	}
	return nil
}

// Sync flushes the buffered events and fsyncs the file.
func (w *Writer) Sync() error {
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("tfevents: write %s: %w", w.path, err)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("tfevents: fsync %s: %w", w.path, err)
	}
	return nil
}

// Close syncs and closes the file.
func (w *Writer) Close() error {
	err := w.Sync()
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("tfevents: close %s: %w", w.path, cerr)
	}
	return err
}

func (w *Writer) writeRecord(data []byte) error {
	if _, err := w.w.Write(Record(data)); err != nil {
		return fmt.Errorf("tfevents: write %s: %w", w.path, err)
	}
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maskedCRC is TFRecord's checksum: CRC-32C, rotated right by 15 bits plus a constant, so that a
// CRC of data that itself holds CRCs is not trivially related to them.
func maskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

// Record frames data as one TFRecord: length, masked CRC of the length, data, masked CRC of data.
func Record(data []byte) []byte {
	out := make([]byte, 12, 12+len(data)+4)
	binary.LittleEndian.PutUint64(out, uint64(len(data)))
	binary.LittleEndian.PutUint32(out[8:], maskedCRC(out[:8]))
	out = append(out, data...)
	return binary.LittleEndian.AppendUint32(out, maskedCRC(data))
}

type scalar struct {
	tag   string
	value float32
}

// Protobuf wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

func appendKey(b []byte, field, wire int) []byte {
	return binary.AppendUvarint(b, uint64(field<<3|wire))
}

func appendBytes(b []byte, field int, v []byte) []byte {
	b = appendKey(b, field, wireBytes)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// encodeEvent serializes a tensorboard.Event (tensorboard/compat/proto/event.proto) in field order,
// leaving zero wall_time and step out as proto3 does:
//
//	double wall_time = 1; int64 step = 2; oneof what { string file_version = 3; Summary summary = 5; }
//
// Summary is `repeated Value value = 1`, Value `string tag = 1; oneof value { float simple_value = 2; }`.
func encodeEvent(wall time.Time, step int64, fileVersion string, values []scalar) []byte {
	var b []byte
	if t := float64(wall.Unix()) + float64(wall.Nanosecond())/1e9; t != 0 {
		b = appendKey(b, 1, wireFixed64)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(t))
	}
	if step != 0 {
		b = appendKey(b, 2, wireVarint)
		b = binary.AppendUvarint(b, uint64(step)) // int64: two's complement, as protobuf encodes it
	}
	if fileVersion != "" {
		b = appendBytes(b, 3, []byte(fileVersion))
	}
	if values != nil {
		var summary []byte
		for _, v := range values {
			var val []byte
			val = appendBytes(val, 1, []byte(v.tag))
			val = appendKey(val, 2, wireFixed32)
			val = binary.LittleEndian.AppendUint32(val, math.Float32bits(v.value))
			summary = appendBytes(summary, 1, val)
		}
		b = appendBytes(b, 5, summary)
	}
	return b
}
