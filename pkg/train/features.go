package train

import (
	"fmt"

	"github.com/spreadtrain/spreadtrain/pkg/data"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// Features runs the encoder (both backbones, for a two-backbone model: Model.Embed) in evaluation
// mode, without gradients, over a dataset with the
// evaluation transform, and returns its features [N, F] as float32 on the CPU, outside any scope.
func Features(m *Model, aug *data.Augmenter, d *data.Dataset, dev torch.Device, batch int) (feats *torch.Tensor, err error) {
	if d.N == 0 {
		return nil, fmt.Errorf("features: %s is empty", d.Name)
	}
	m.SetEncodersTrain(false)
	defer m.SetEncodersTrain(true)
	size := d.SampleSize()
	var parts []*torch.Tensor
	defer func() {
		for _, p := range parts {
			p.Free()
		}
	}()
	torch.NoGrad(func() {
		for lo := 0; lo < d.N && err == nil; lo += batch {
			hi := min(lo+batch, d.N)
			err = torch.WithScopeErr(func() error {
				x := torch.FromSlice(d.Pixels[lo*size:hi*size], int64(hi-lo), int64(d.C), int64(d.H), int64(d.W)).On(dev)
				in, err := aug.Eval(x)
				if err != nil {
					return fmt.Errorf("features: %w", err)
				}
				f := m.Embed(in).ToDevice(torch.CPU, torch.Float32)
				torch.Persist(f)
				parts = append(parts, f)
				return nil
			})
		}
		if err == nil {
			err = torch.Catch(func() { feats = torch.Cat(parts, 0); torch.Persist(feats) })
		}
	})
	return feats, err
}
