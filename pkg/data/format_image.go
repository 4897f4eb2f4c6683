package data

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // registers the JPEG decoder with image.Decode
	_ "image/png"  // registers the PNG decoder with image.Decode
	"io"
	"runtime"
	"sync"
)

// ImageOptions says what shape decoded images are stored in.
type ImageOptions struct {
	H, W int // output size; images of another size are resized bilinearly
	C    int // 1 (grayscale, ITU-R 601 luma) or 3 (RGB; grayscale images are replicated)
	// MaxSourcePixels refuses images whose header claims more pixels than this before decoding them,
	// so a corrupt or hostile header cannot make the decoder allocate gigabytes. 0 means 1<<26.
	MaxSourcePixels int
	// Workers bounds the decoding goroutines; 0 means runtime.NumCPU().
	Workers int
}

func (o ImageOptions) check() error {
	if o.H <= 0 || o.W <= 0 {
		return fmt.Errorf("image size %dx%d: both must be positive", o.H, o.W)
	}
	if o.C != 1 && o.C != 3 {
		return fmt.Errorf("%d channels: want 1 or 3", o.C)
	}
	return nil
}

func (o ImageOptions) maxSourcePixels() int {
	if o.MaxSourcePixels > 0 {
		return o.MaxSourcePixels
	}
	return 1 << 26
}

// DecodeImage decodes a JPEG or PNG and writes it as CHW uint8 of the requested shape into dst
// (len C*H*W). source names the image in errors. It never panics: a decoder panic on malformed data
// becomes an error.
func DecodeImage(b []byte, source string, o ImageOptions, dst []uint8) (err error) {
	if err := o.check(); err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	if len(dst) != o.C*o.H*o.W {
		return fmt.Errorf("%s: destination holds %d bytes, want %d", source, len(dst), o.C*o.H*o.W)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: image decoder failed on malformed data: %v", source, r)
		}
	}()
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%s: truncated image: the file ends inside its header: %w", source, err)
		}
		return fmt.Errorf("%s: not a readable JPEG or PNG: %w", source, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > o.maxSourcePixels()/max(cfg.Height, 1) {
		return fmt.Errorf("%s: %s header claims %dx%d pixels, over the %d-pixel limit (ImageOptions.MaxSourcePixels)", source, format, cfg.Width, cfg.Height, o.maxSourcePixels())
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("%s: corrupt or truncated %s: %w", source, format, err)
	}
	toCHW(img, o, dst)
	return nil
}

// toCHW converts img to o.C planes, resizing to o.H x o.W when its size differs.
func toCHW(img image.Image, o ImageOptions, dst []uint8) {
	bnd := img.Bounds()
	sw, sh := bnd.Dx(), bnd.Dy()
	// Read the source once into planar RGB (or gray) at its own size; the resize works on planes.
	srcC := 3
	if o.C == 1 {
		srcC = 1
	}
	src := make([]uint8, srcC*sh*sw)
	plane := sh * sw
	put := func(x, y int, r, g, b uint8) {
		i := y*sw + x
		if srcC == 1 {
			// ITU-R 601 luma, as PIL's convert("L") computes it, rounded.
			src[i] = uint8((299*uint32(r) + 587*uint32(g) + 114*uint32(b) + 500) / 1000)
			return
		}
		src[i], src[plane+i], src[2*plane+i] = r, g, b
	}
	switch m := img.(type) {
	case *image.YCbCr: // every JPEG in colour: skip the per-pixel interface calls
		for y := 0; y < sh; y++ {
			for x := 0; x < sw; x++ {
				yi := m.YOffset(bnd.Min.X+x, bnd.Min.Y+y)
				ci := m.COffset(bnd.Min.X+x, bnd.Min.Y+y)
				r, g, b := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				put(x, y, r, g, b)
			}
		}
	case *image.Gray:
		for y := 0; y < sh; y++ {
			for x := 0; x < sw; x++ {
				v := m.Pix[m.PixOffset(bnd.Min.X+x, bnd.Min.Y+y)]
				if srcC == 1 {
					src[y*sw+x] = v
				} else {
					put(x, y, v, v, v)
				}
			}
		}
	default:
		// Other colour models (paletted, 16-bit, alpha) go through RGBA(): alpha-premultiplied, so
		// transparent pixels come out composited on black.
		for y := 0; y < sh; y++ {
			for x := 0; x < sw; x++ {
				r, g, b, _ := img.At(bnd.Min.X+x, bnd.Min.Y+y).RGBA()
				put(x, y, uint8(r>>8), uint8(g>>8), uint8(b>>8))
			}
		}
	}
	for c := 0; c < o.C; c++ {
		sc := c
		if srcC == 1 {
			sc = 0
		}
		resizeBilinear(src[sc*plane:(sc+1)*plane], sw, sh, dst[c*o.H*o.W:(c+1)*o.H*o.W], o.W, o.H)
	}
}

// resizeBilinear resizes one uint8 plane with half-pixel centres (align_corners=false, as torch's
// and PIL's bilinear do) and no antialiasing; a same-size resize is a copy.
func resizeBilinear(src []uint8, sw, sh int, dst []uint8, dw, dh int) {
	if sw == dw && sh == dh {
		copy(dst, src)
		return
	}
	sx := float64(sw) / float64(dw)
	sy := float64(sh) / float64(dh)
	for y := 0; y < dh; y++ {
		fy := (float64(y)+0.5)*sy - 0.5
		y0, wy := splitCoord(fy, sh)
		y1 := min(y0+1, sh-1)
		for x := 0; x < dw; x++ {
			fx := (float64(x)+0.5)*sx - 0.5
			x0, wx := splitCoord(fx, sw)
			x1 := min(x0+1, sw-1)
			top := float64(src[y0*sw+x0])*(1-wx) + float64(src[y0*sw+x1])*wx
			bot := float64(src[y1*sw+x0])*(1-wx) + float64(src[y1*sw+x1])*wx
			v := top*(1-wy) + bot*wy + 0.5
			dst[y*dw+x] = uint8(min(max(v, 0), 255))
		}
	}
}

// splitCoord clamps a source coordinate to [0, n-1] and splits it into a cell and a weight.
func splitCoord(f float64, n int) (int, float64) {
	if f <= 0 {
		return 0, 0
	}
	if f >= float64(n-1) {
		return n - 1, 0
	}
	i := int(f)
	return i, f - float64(i)
}

// imageJob is one image to decode: its bytes (or a function that reads them) and a description.
type imageJob struct {
	source string
	read   func() ([]byte, error)
}

// decodeAll decodes jobs into one N*C*H*W buffer with a bounded pool of goroutines. Output order is
// job order whatever the scheduling, and the error returned is that of the lowest-numbered failing
// job, so a run's result and message are deterministic.
func decodeAll(jobs []imageJob, o ImageOptions) ([]uint8, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	size := o.C * o.H * o.W
	pixels := make([]uint8, len(jobs)*size)
	errs := make([]error, len(jobs))
	workers := o.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	workers = min(workers, max(len(jobs), 1))
	next := make(chan int)
	var failed sync.Once
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				b, err := jobs[i].read()
				if err == nil {
					err = DecodeImage(b, jobs[i].source, o, pixels[i*size:(i+1)*size])
				} else {
					err = fmt.Errorf("%s: %w", jobs[i].source, err)
				}
				if err != nil {
					errs[i] = err
					failed.Do(func() { close(stop) })
				}
			}
		}()
	}
feed:
	for i := range jobs {
		select {
		case next <- i:
		case <-stop:
			break feed
		}
	}
	close(next)
	wg.Wait()
	return pixels, firstError(errs)
}

func firstError(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
