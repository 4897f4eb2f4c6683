package train

import "github.com/spreadtrain/spreadtrain/pkg/torch"

// Step computes one training step's loss terms exactly as the training loop does on one process:
// views are the augmented, normalised views [B, V, C, H, W] (what data.Augmenter.Views returns) and
// coarse the labels [B] (int64), both on the model's device; fp is the fast path (FastPath.Apply
// has prepared the model for it). The caller runs Total.Backward and the
// optimizer. Like pkg/torch ops it panics with *torch.Error; wrap it in torch.Catch. Benchmarks
// (bench/gputrain) use it to time the trainer's step without its data pipeline or checkpoints.
func Step(m *Model, meth MethodConfig, fp FastPath, views, coarse *torch.Tensor) Terms {
	return objective(m, meth, fp, stepInput{views: views, coarse: coarse})
}
