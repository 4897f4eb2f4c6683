package data

import (
	"fmt"
	"sync"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// LoaderOptions configure a Loader.
type LoaderOptions struct {
	SamplerOptions
	// Stream keeps the dataset in host memory and gathers each batch there with Go workers, for data
	// too big for the device; otherwise the whole dataset is uploaded once. Both give the same batches.
	Stream   bool
	Workers  int // streaming: gathering goroutines (0: 2)
	Prefetch int // streaming: batches prepared ahead, which bounds host memory (0: 4)
}

// Loader serves uint8 batches on a device in the Sampler's order, from a DeviceDataset or, with
// Stream, from host memory. Use it from one goroutine (the training loop).
type Loader struct {
	d       *Dataset
	dev     torch.Device
	opts    LoaderOptions
	sampler *Sampler // resident mode, and the consumer's position in stream mode
	res     *DeviceDataset
	stream  *streamer
	// resident mode: this rank's share of the epoch's permutation on the device, uploaded once an
	// epoch, so that a step's indices are a slice of it instead of an upload
	order      *torch.Tensor
	orderEpoch int
}

// NewLoader prepares batches of d on dev.
func NewLoader(d *Dataset, dev torch.Device, o LoaderOptions) (*Loader, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	s, err := NewSampler(d.N, o.SamplerOptions)
	if err != nil {
		return nil, err
	}
	l := &Loader{d: d, dev: dev, opts: o, sampler: s}
	if o.Workers <= 0 {
		l.opts.Workers = 2
	}
	if o.Prefetch <= 0 {
		l.opts.Prefetch = 4
	}
	if o.Stream {
		l.stream = startStreamer(d, s.State(), l.opts)
		return l, nil
	}
	if l.res, err = Upload(d, dev); err != nil {
		return nil, err
	}
	return l, nil
}

// Next returns the next batch (its tensors in the caller's scope); ok is false once at the end of
// each epoch, and the next call starts the following epoch.
func (l *Loader) Next() (b Batch, ok bool, err error) {
	if l.stream == nil && l.res == nil {
		return b, false, fmt.Errorf("loader: Next after Close")
	}
	if l.stream == nil {
		idx, ok := l.sampler.Next()
		if !ok {
			return b, false, nil
		}
		at, err := l.epochOrder()
		if err != nil {
			return b, false, err
		}
		b, err = l.res.Gather(idx, at)
		return b, err == nil, err
	}
	j, open := <-l.stream.ordered
	if !open {
		return b, false, fmt.Errorf("loader: closed")
	}
	if j.idx == nil {
		l.sampler.st = j.after
		return b, false, nil
	}
	<-j.done
	err = torch.Catch(func() {
		s := torch.NewScope()
		defer s.Close()
		n, d := int64(len(j.idx)), l.d
		buf := j.buf
		b = Batch{Index: j.idx,
			Images: torch.FromSlice(buf.pixels[:len(j.idx)*d.SampleSize()], n, int64(d.C), int64(d.H), int64(d.W)).On(l.dev),
			Coarse: torch.FromSlice(buf.coarse[:n]).On(l.dev),
			Fine:   torch.FromSlice(buf.fine[:n]).On(l.dev),
			Group:  torch.FromSlice(buf.group[:n]).On(l.dev)}
		s.Keep(b.Images, b.Coarse, b.Fine, b.Group)
	})
	l.stream.free <- j.buf // FromSlice copied it
	l.sampler.st = j.after
	return b, err == nil, err
}

// epochOrder is the current batch's indices on the device: a slice of the epoch's order, which is
// uploaded at the epoch's first batch (after a Restore, at the first batch served).
func (l *Loader) epochOrder() (at *torch.Tensor, err error) {
	err = torch.Catch(func() {
		if l.order == nil || l.orderEpoch != l.sampler.Epoch() {
			l.freeOrder()
			l.order = torch.FromSlice(l.sampler.shard).On(l.dev)
			torch.Persist(l.order)
			l.orderEpoch = l.sampler.Epoch()
		}
		bs := int64(l.sampler.st.BatchSize)
		lo := int64(l.sampler.Position()-1) * bs
		at = l.order.Narrow(0, lo, min(bs, int64(len(l.sampler.shard))-lo))
	})
	return at, err
}

func (l *Loader) freeOrder() {
	if l.order != nil {
		l.order.Free()
		l.order = nil
	}
}

// StepsPerEpoch is the number of batches per epoch.
func (l *Loader) StepsPerEpoch() int { return l.sampler.StepsPerEpoch() }

// Position is the number of batches of the current epoch served.
func (l *Loader) Position() int { return l.sampler.Position() }

// State is the position of the batches served so far (not of those prefetched).
func (l *Loader) State() SamplerState { return l.sampler.State() }

// Restore continues from a stored state, which must be for the same dataset size.
func (l *Loader) Restore(st SamplerState) error {
	if st.N != l.d.N {
		return fmt.Errorf("loader state is for %d samples, the dataset has %d", st.N, l.d.N)
	}
	if err := l.sampler.Restore(st); err != nil {
		return err
	}
	l.freeOrder()
	if l.stream != nil {
		l.stream.stop()
		l.stream = startStreamer(l.d, st, l.opts)
	}
	return nil
}

// Close stops the streaming workers and frees the device copy.
func (l *Loader) Close() {
	if l.stream != nil {
		l.stream.stop()
		l.stream = nil
	}
	l.freeOrder()
	if l.res != nil {
		l.res.Free()
		l.res = nil
	}
}

// hostBuf holds one gathered batch; Prefetch of them exist per streamer, reused.
type hostBuf struct {
	pixels              []uint8
	coarse, fine, group []int64
}

type streamJob struct {
	idx   []int64 // nil marks the end of an epoch
	after SamplerState
	buf   *hostBuf
	done  chan struct{}
}

// streamer runs a producer (the sampler) and workers that gather batches into a fixed pool of
// buffers; ordered hands jobs to the consumer in sampler order.
type streamer struct {
	ordered chan *streamJob
	free    chan *hostBuf
	quit    chan struct{}
	wg      sync.WaitGroup
}

func startStreamer(d *Dataset, st SamplerState, o LoaderOptions) *streamer {
	s := &streamer{
		ordered: make(chan *streamJob, o.Prefetch),
		free:    make(chan *hostBuf, o.Prefetch),
		quit:    make(chan struct{}),
	}
	for i := 0; i < o.Prefetch; i++ {
		bs := o.BatchSize
		s.free <- &hostBuf{pixels: make([]uint8, bs*d.SampleSize()), coarse: make([]int64, bs),
			fine: make([]int64, bs), group: make([]int64, bs)}
	}
	work := make(chan *streamJob)
	for w := 0; w < o.Workers; w++ {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for j := range work {
				gather(d, j.idx, j.buf)
				close(j.done)
			}
		}()
	}
	sampler := &Sampler{st: st}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(work)
		for {
			idx, ok := sampler.Next()
			j := &streamJob{idx: idx, after: sampler.State()}
			if ok {
				select {
				case j.buf = <-s.free:
				case <-s.quit:
					return
				}
				j.done = make(chan struct{})
				select {
				case work <- j:
				case <-s.quit:
					return
				}
			}
			select {
			case s.ordered <- j:
			case <-s.quit:
				return
			}
		}
	}()
	return s
}

func gather(d *Dataset, idx []int64, b *hostBuf) {
	ss := d.SampleSize()
	for k, i := range idx {
		copy(b.pixels[k*ss:(k+1)*ss], d.Pixels[int(i)*ss:(int(i)+1)*ss])
		b.coarse[k], b.fine[k], b.group[k] = d.Coarse[i], d.Fine[i], d.Group[i]
	}
}

// stop ends the goroutines; jobs already queued are dropped.
func (s *streamer) stop() {
	close(s.quit)
	s.wg.Wait()
}
