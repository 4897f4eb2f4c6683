// Command gputrain times spreadtrain's training step on synthetic CIFAR-sized data resident on the
// device: ResNet-18 (CIFAR stem, width 1) with the thanos objective (SupCon + cNCE + autoencoder),
// 2 views, the reference augmentation on the device (data.Augmenter.Views), AdamW. It runs --warmup
// steps, then times --steps steps between two device synchronisations and prints one JSON line with
// images/s. bench/gpu_train.sh runs it next to the PyTorch eager and torch.compile equivalents
// (bench/gpu_train.py).
//
//	go run ./bench/gputrain --device cpu --batch 8 --steps 2 --warmup 1   # a smoke run on CPU
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/spreadtrain/spreadtrain/pkg/data"
	"github.com/spreadtrain/spreadtrain/pkg/nn"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
	"github.com/spreadtrain/spreadtrain/pkg/train"
)

type result struct {
	Impl           string  `json:"impl"`
	Device         string  `json:"device"`
	Libtorch       string  `json:"libtorch"`
	Batch          int     `json:"batch"`
	Views          int     `json:"views"`
	Width          float64 `json:"width"`
	Steps          int     `json:"steps"`
	Warmup         int     `json:"warmup"`
	AMP            bool    `json:"amp_bf16"`
	ChannelsLast   bool    `json:"channels_last"`
	CuDNNBenchmark bool    `json:"cudnn_benchmark"`
	Foreach        bool    `json:"foreach"`
	Params         int64   `json:"params"`
	Seconds        float64 `json:"seconds"`
	MsPerStep      float64 `json:"ms_per_step"`
	ImagesPerS     float64 `json:"images_per_s"`
	Loss           float64 `json:"loss"`
}

func main() {
	device := flag.String("device", "cuda", "cpu, cuda or cuda:N")
	batch := flag.Int("batch", 512, "images per step (each gives --views views)")
	views := flag.Int("views", 2, "augmented views per image")
	steps := flag.Int("steps", 50, "timed steps")
	warmup := flag.Int("warmup", 10, "untimed steps first (allocator, cuDNN algorithm choice)")
	images := flag.Int("images", 50000, "synthetic uint8 32x32x3 images resident on the device")
	coarse := flag.Int("coarse", 2, "coarse classes (CIFAR-10 vehicles/animals: 2)")
	speed := train.DefaultSpeed()
	flag.StringVar(&speed.AMP, "amp", "auto", "bf16 autocast: auto (on CUDA), on or off (the trainer's speed.amp)")
	flag.StringVar(&speed.ChannelsLast, "channels-last", "auto", "channels-last layout: auto, on or off")
	flag.StringVar(&speed.CuDNNBenchmark, "cudnn-benchmark", "auto", "cuDNN's autotuner: auto, on or off")
	flag.StringVar(&speed.Foreach, "foreach", "auto", "multi-tensor AdamW: auto, on or off")
	width := flag.Float64("width", 1, "encoder and decoder width multiplier (1: ResNet-18's 64 base channels)")
	threads := flag.Int("threads", 0, "libtorch intra-op threads on CPU (0: libtorch's default)")
	seed := flag.Uint64("seed", 0, "random seed")
	flag.Parse()
	if err := run(*device, *batch, *views, *steps, *warmup, *images, *coarse, *width, speed, *threads, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "gputrain:", err)
		os.Exit(1)
	}
}

func run(device string, batch, views, steps, warmup, images, coarse int, width float64, speed train.SpeedConfig, threads int, seed uint64) error {
	runtime.LockOSThread() // libtorch keeps grad mode per thread
	if batch < 2 || views < 2 || steps < 1 || warmup < 0 || images < batch || coarse < 1 {
		return fmt.Errorf("want --batch >= 2, --views >= 2, --steps >= 1, --warmup >= 0, --images >= --batch, --coarse >= 1")
	}
	if threads > 0 {
		torch.SetNumThreads(threads)
	}
	dev, err := torch.ParseDevice(device)
	if err != nil {
		return err
	}
	torch.ManualSeed(seed)
	fast, err := speed.Resolve(dev)
	if err != nil {
		return err
	}

	cfg := train.Default()
	cfg.Data.Name = "cifar10"
	cfg.Model.EncoderConfig = nn.EncoderConfig{Arch: "resnet18", Stem: "cifar", Width: width}
	cfg.Model.Head = "none"
	cfg.Method = train.MethodConfig{Name: "thanos", Alpha: 0.5, Beta: 1, Gamma: 0, Temperature: 0.5,
		Denominator: "all", Views: views}
	cfg.Decoder.Width = width
	cfg.Train.BatchSize = batch
	cfg = cfg.Normalized()
	model, err := train.NewModel(cfg, train.Shape{C: 3, H: 32, W: 32, CoarseClasses: coarse})
	if err != nil {
		return err
	}
	defer model.Free()
	aug, err := data.NewAugmenter(data.DefaultAugment(), "cifar10", 3, 32, 32)
	if err != nil {
		return err
	}
	res := result{Impl: implName(fast), Device: dev.String(), Libtorch: torch.Version(), Batch: batch, Views: views, Width: width,
		Steps: steps, Warmup: warmup, AMP: fast.AMP, ChannelsLast: fast.ChannelsLast, CuDNNBenchmark: fast.CuDNNBenchmark,
		Foreach: fast.Foreach}
	err = torch.Catch(func() {
		model.ToDevice(dev)
		model.SetTrain(true)
		fast.Apply(model)
		params := model.Parameters()
		res.Params = nn.CountParams(params)
		opt, oerr := nn.NewOptimizer(fast.Optim(cfg.Optim), params)
		if oerr != nil {
			panic(&torch.Error{Op: "optimizer", Msg: oerr.Error()})
		}
		// the dataset lives on the device, as the trainer keeps CIFAR-10 there
		pixels := torch.Randint(0, 256, []int64{int64(images), 3, 32, 32}, torch.Uint8, dev)
		labels := torch.Randint(0, int64(coarse), []int64{int64(images)}, torch.Int64, dev)
		step := func(last bool) {
			idx := torch.Randint(0, int64(images), []int64{int64(batch)}, torch.Int64, dev)
			x := pixels.IndexSelect(0, idx)
			y := labels.IndexSelect(0, idx)
			v, verr := aug.Views(x, views)
			if verr != nil {
				panic(&torch.Error{Op: "augment", Msg: verr.Error()})
			}
			terms := train.Step(model, cfg.Method, fast, v, y)
			terms.Total.Backward()
			opt.Step(cfg.Optim.LR)
			opt.ZeroGrad()
			if last {
				res.Loss = terms.Total.Item() // one device-to-host copy, at the end of the timed loop
			}
		}
		for i := 0; i < warmup; i++ {
			torch.WithScope(func() { step(false) })
		}
		torch.Synchronize(dev)
		start := time.Now()
		for i := 0; i < steps; i++ {
			torch.WithScope(func() { step(i == steps-1) })
		}
		torch.Synchronize(dev)
		res.Seconds = time.Since(start).Seconds()
	})
	if err != nil {
		return err
	}
	res.MsPerStep = 1000 * res.Seconds / float64(steps)
	res.ImagesPerS = float64(batch*steps) / res.Seconds
	return json.NewEncoder(os.Stdout).Encode(res)
}

// implName labels a run by its switches: spreadtrain-plain (none), spreadtrain-fast (all), or the
// ones that are on, e.g. spreadtrain+amp+foreach.
func implName(fp train.FastPath) string {
	on := map[string]bool{"amp": fp.AMP, "channels_last": fp.ChannelsLast, "cudnn_benchmark": fp.CuDNNBenchmark, "foreach": fp.Foreach}
	name, n := "spreadtrain", 0
	for _, k := range []string{"amp", "channels_last", "cudnn_benchmark", "foreach"} {
		if on[k] {
			name += "+" + k
			n++
		}
	}
	switch n {
	case 0:
		return "spreadtrain-plain"
	case len(on):
		return "spreadtrain-fast"
	}
	return name
}
