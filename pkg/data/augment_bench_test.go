package data

import (
	"os"
	"strconv"
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// benchImages is the CIFAR-10 JPEG training set ($SPREADTRAIN_BENCH_PER_CLASS images per class,
// default 100) when ../shared/data has it, else random 32x32 RGB images.
func benchImages(b *testing.B) *Dataset {
	archive := os.Getenv("SPREADTRAIN_BENCH_TAR")
	if archive == "" {
		archive = "/work/shared/data/cifar10-jpg/cifar10-jpg-train.tar.gz"
	}
	per := 100
	if v, err := strconv.Atoi(os.Getenv("SPREADTRAIN_BENCH_PER_CLASS")); err == nil && v > 0 {
		per = v
	}
	if _, err := os.Stat(archive); err == nil {
		d, err := LoadImageTarGz(archive, "train", FolderOptions{ImageOptions: ImageOptions{H: 32, W: 32, C: 3}, PerClassLimit: per})
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("images: %s, %d", archive, d.N)
		return d
	}
	d := testDataset(per * 10)
	d.C, d.H, d.W = 3, 32, 32
	d.Pixels = make([]uint8, d.N*3*32*32)
	for i := range d.Pixels {
		d.Pixels[i] = uint8((i*2654435761)>>13) & 0xff
	}
	b.Logf("images: random, %d", d.N)
	return d
}

// BenchmarkAugmentTwoViews: one op is a batch of 256 CIFAR-sized images, two augmented views each
// (reference augmentation), gathered from the device-resident set; metric batches/s.
func BenchmarkAugmentTwoViews(b *testing.B) {
	torch.SetNumThreads(1)
	d := benchImages(b)
	for _, stream := range []bool{false, true} {
		name := "resident"
		if stream {
			name = "stream"
		}
		b.Run(name, func(b *testing.B) {
			l, err := NewLoader(d, torch.CPU, LoaderOptions{SamplerOptions: SamplerOptions{BatchSize: 256, DropLast: true, Seed: 1}, Stream: stream})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			a, err := NewAugmenter(DefaultAugment(), "cifar10", 3, 32, 32)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				torch.WithScope(func() {
					bt, ok, err := l.Next()
					if !ok && err == nil {
						bt, _, err = l.Next()
					}
					if err != nil {
						b.Fatal(err)
					}
					if _, err := a.Views(bt.Images, 2); err != nil {
						b.Fatal(err)
					}
				})
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "batches/s")
		})
	}
}
