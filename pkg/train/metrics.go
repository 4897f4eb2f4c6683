package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spreadtrain/spreadtrain/pkg/tfevents"
)

// Record is one line of RUNDIR/metrics.jsonl: kind "step" (averages over the last log interval),
// "epoch" (validation) or "resume" (settings a resume changed, in force from Step on), with the step
// it was written after.
type Record struct {
	Kind    string             `json:"kind"`
	Step    int                `json:"step"`
	Epoch   int                `json:"epoch"`
	Values  map[string]float64 `json:"values"`
	Changes []Change           `json:"changes,omitempty"`
}

const metricsFile = "metrics.jsonl"

// metricsLog appends records, and the same values to a TensorBoard event file (a new one per
// invocation); records after a checkpoint are dropped on resume so that a resumed run's log reads
// like an uninterrupted one.
type metricsLog struct {
	f  *os.File
	w  *bufio.Writer
	tb *tfevents.Writer
}

func openMetrics(runDir string, keepUpToStep int, resume bool) (*metricsLog, error) {
	path := filepath.Join(runDir, metricsFile)
	if resume {
		if err := trimMetrics(path, keepUpToStep); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	tb, err := tfevents.Create(runDir, time.Now())
	if err != nil {
		f.Close()
		return nil, err
	}
	return &metricsLog{f: f, w: bufio.NewWriter(f), tb: tb}, nil
}

func (l *metricsLog) add(r Record) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return err
	}
	l.w.Write(raw)
	if err := l.w.WriteByte('\n'); err != nil {
		return err
	}
	return l.tb.Scalars(int64(r.Step), time.Now(), r.Values)
}

// sync makes the log durable (before each checkpoint).
func (l *metricsLog) sync() error {
	if err := l.w.Flush(); err != nil {
		return err
	}
	if err := l.f.Sync(); err != nil {
		return err
	}
	return l.tb.Sync()
}

func (l *metricsLog) close() error {
	err := l.sync()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	if cerr := l.tb.Close(); err == nil {
		err = cerr
	}
	return err
}

// trimMetrics keeps the records written up to step (a torn last line from a crash is dropped too).
func trimMetrics(path string, step int) error {
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var kept bytes.Buffer
	for _, line := range bytes.Split(raw, []byte("\n")) {
		var r Record
		if len(line) == 0 || json.Unmarshal(line, &r) != nil || r.Step > step {
			continue
		}
		kept.Write(line)
		kept.WriteByte('\n')
	}
	return writeAtomic(path, kept.Bytes())
}

// ReadMetrics reads a run's metrics log.
func ReadMetrics(runDir string) ([]Record, error) {
	path := filepath.Join(runDir, metricsFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Record
	for i, line := range bytes.Split(raw, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, i+1, err)
		}
		out = append(out, r)
	}
	return out, nil
}
