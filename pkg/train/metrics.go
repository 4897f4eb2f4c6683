package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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

// metricsLog appends records; records after a checkpoint are dropped on resume so that a resumed
// run's log reads like an uninterrupted one.
type metricsLog struct {
	f *os.File
	w *bufio.Writer
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
	return &metricsLog{f: f, w: bufio.NewWriter(f)}, nil
}

func (l *metricsLog) add(r Record) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return err
	}
	l.w.Write(raw)
	return l.w.WriteByte('\n')
}

// sync makes the log durable (before each checkpoint).
func (l *metricsLog) sync() error {
	if err := l.w.Flush(); err != nil {
		return err
	}
	return l.f.Sync()
}

func (l *metricsLog) close() error {
	if err := l.sync(); err != nil {
		l.f.Close()
		return err
	}
	return l.f.Close()
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
