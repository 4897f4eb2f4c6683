package train

import (
	"fmt"

	"github.com/spreadtrain/spreadtrain/pkg/data"
	"github.com/spreadtrain/spreadtrain/pkg/eval"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// Features runs the encoder (both backbones, for a two-backbone model: Model.Embed) in evaluation
// mode, without gradients, over a dataset with the evaluation transform, and returns its features
// [N, F] as float32 on the CPU, outside any scope.
func Features(m *Model, aug *data.Augmenter, d *data.Dataset, dev torch.Device, batch int) (feats *torch.Tensor, err error) {
	if d.N == 0 {
		return nil, fmt.Errorf("features: %s is empty", d.Name)
	}
	m.SetEncodersTrain(false)
	defer m.SetEncodersTrain(true)
	size := d.SampleSize()
	err = torch.Catch(func() {
		torch.NoGrad(func() {
			var parts []*torch.Tensor
			defer func() {
				for _, p := range parts {
					p.Free()
				}
			}()
			for lo := 0; lo < d.N; lo += batch {
				hi := min(lo+batch, d.N)
				torch.WithScope(func() {
					x := torch.FromSlice(d.Pixels[lo*size:hi*size], int64(hi-lo), int64(d.C), int64(d.H), int64(d.W)).On(dev)
					in, err := aug.Eval(x)
					if err != nil {
						panic(&torch.Error{Op: "features", Msg: err.Error()})
					}
					f := m.Embed(in).ToDevice(torch.CPU, torch.Float32)
					torch.Persist(f)
					parts = append(parts, f)
				})
			}
			feats = torch.Cat(parts, 0)
			torch.Persist(feats)
		})
	})
	return feats, err
}

// validationMemory is how many training images (at most) the validation kNN compares against.
const validationMemory = 10000

// validate scores the encoder by kNN accuracy on the coarse labels of the held-out split, with (a
// strided subset of) the training set as memory: the criterion of the best checkpoint.
func (l *loop) validate() (float64, error) {
	memory := l.train
	if memory.N > validationMemory {
		idx := make([]int, validationMemory)
		for i := range idx {
			idx[i] = i * memory.N / validationMemory
		}
		memory = memory.Subset(idx)
	}
	batch := max(l.cfg.Train.BatchSize, 256)
	trainF, err := Features(l.model, l.pipe.aug, memory, l.dev, batch)
	if err != nil {
		return 0, err
	}
	defer trainF.Free()
	valF, err := Features(l.model, l.pipe.aug, l.val, l.dev, batch)
	if err != nil {
		return 0, err
	}
	defer valF.Free()
	res, err := eval.KNN(eval.Data{X: trainF, Labels: memory.Coarse}, eval.Data{X: valF, Labels: l.val.Coarse},
		eval.KNNConfig{K: l.cfg.Train.KNN})
	if err != nil {
		return 0, err
	}
	return res.Accuracy, nil
}
