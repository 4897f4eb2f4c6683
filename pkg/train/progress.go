package train

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress draws one line per epoch on a terminal (loss terms, images/s, ETA), redrawn in place.
type progress struct {
	w       io.Writer
	total   int // steps in the epoch
	epoch   int
	epochs  int
	started time.Time
	last    time.Time
}

func newProgress(w io.Writer, epoch, epochs, total int) *progress {
	now := time.Now()
	return &progress{w: w, total: total, epoch: epoch, epochs: epochs, started: now}
}

// update redraws the bar at most 10 times a second (and always at the end).
func (p *progress) update(done int, imagesPerSec float64, terms string) {
	now := time.Now()
	if done < p.total && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	const width = 24
	filled := width * done / max(1, p.total)
	eta := "--"
	if done > 0 {
		left := time.Duration(float64(now.Sub(p.started)) / float64(done) * float64(p.total-done))
		eta = left.Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "\r\033[Kepoch %d/%d [%s%s] %d/%d %s %.0f img/s ETA %s", p.epoch, p.epochs,
		strings.Repeat("=", filled), strings.Repeat(" ", width-filled), done, p.total, terms, imagesPerSec, eta)
	if done >= p.total {
		fmt.Fprintln(p.w)
	}
}
