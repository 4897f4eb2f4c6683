package train

import (
	"fmt"
	"time"

	"github.com/spreadtrain/spreadtrain/pkg/data"
	"github.com/spreadtrain/spreadtrain/pkg/eval"
	"github.com/spreadtrain/spreadtrain/pkg/nn"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// augmentedProbe is the reference code's transfer protocol: a linear classifier on the fine labels
// trained through the frozen encoder (evaluation mode) on augmented training images, AdamW lr 1e-3,
// batch 128, for a set number of epochs; top-1 on the test split. Slower than the default probe on
// precomputed features, which sees each training image once, unaugmented.
func augmentedProbe(tr *trained, train, test *data.Dataset, testFeats *torch.Tensor, epochs int, seed uint64) (*eval.ProbeResult, error) {
	start := time.Now()
	classes := int64(len(train.FineNames))
	fineTrain := *train
	fineTrain.Coarse, fineTrain.CoarseNames = train.Fine, train.FineNames // the loader serves Coarse
	loader, err := data.NewLoader(&fineTrain, tr.dev, data.LoaderOptions{SamplerOptions: data.SamplerOptions{
		BatchSize: 128, Seed: seed}})
	if err != nil {
		return nil, err
	}
	defer loader.Close()
	var head *torch.Module
	defer func() {
		if head != nil {
			head.Free()
		}
	}()
	if err := torch.Catch(func() {
		head = torch.NewLinear(tr.model.EmbedDim(), classes, true)
		head.ToDevice(tr.dev)
	}); err != nil {
		return nil, fmt.Errorf("augmented probe: %w", err)
	}
	res := &eval.ProbeResult{NumClasses: int(classes), Iterations: epochs}
	opt, err := nn.NewOptimizer(nn.OptimConfig{Name: "adamw", LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}, head.Parameters())
	if err != nil {
		return nil, fmt.Errorf("augmented probe: %w", err)
	}
	tr.model.SetEncodersTrain(false)
	var correct, seen float64
	for epoch := 0; epoch < epochs; epoch++ {
		correct, seen = 0, 0
		err := eachAugmentedBatch(loader, tr.aug, func(b data.Batch, images *torch.Tensor) error {
			var h *torch.Tensor
			torch.NoGrad(func() { h = tr.model.Embed(images) })
			logits := head.Forward(h)
			torch.CrossEntropy(logits, b.Coarse, torch.ReduceMean, 0).Backward()
			opt.Step(1e-3)
			opt.ZeroGrad()
			correct += logits.Argmax(1, false).Eq(b.Coarse).To(torch.Float64).Sum().Item()
			seen += float64(b.Coarse.Size(0))
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("augmented probe: %w", err)
		}
	}
	res.TrainAcc = correct / max(seen, 1) // on the last epoch's augmented images
	err = torch.Catch(func() {
		torch.NoGrad(func() {
			torch.WithScope(func() {
				pred := head.Forward(testFeats.On(tr.dev)).Argmax(1, false).On(torch.CPU)
				res.TestAcc = pred.Eq(torch.FromSlice(test.Fine)).To(torch.Float64).Mean().Item()
			})
		})
	})
	if err != nil {
		return nil, fmt.Errorf("augmented probe: %w", err)
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// eachAugmentedBatch runs f, in a scope, on every batch of one pass over loader, with one augmented
// view of the batch's images [B, C, H, W] (the training loops of the augmented probe and of GEORGE's
// full-network variant).
func eachAugmentedBatch(loader *data.Loader, aug *data.Augmenter, f func(b data.Batch, images *torch.Tensor) error) error {
	for {
		b, ok, err := loader.Next()
		if err != nil || !ok {
			return err
		}
		err = torch.WithScopeErr(func() error {
			views, err := aug.Views(b.Images, 1)
			if err != nil {
				return err
			}
			return f(b, views.Flatten(0, 1))
		})
		if err != nil {
			return err
		}
	}
}
