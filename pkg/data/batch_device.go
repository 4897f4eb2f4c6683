package data

import (
	"fmt"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// DeviceDataset is a Dataset uploaded once to a device: uint8 pixels [N, C, H, W] and int64 labels
// [N]. Batches are index_selects there, so an epoch moves no image data between host and device.
// Its tensors are outside every scope; Free releases them (else the GC does).
type DeviceDataset struct {
	N, C, H, W          int
	Device              torch.Device
	Pixels              *torch.Tensor
	Coarse, Fine, Group *torch.Tensor
}

// Batch is one batch of samples on the device.
type Batch struct {
	Index               []int64       // dataset indices
	Images              *torch.Tensor // uint8 [B, C, H, W]
	Coarse, Fine, Group *torch.Tensor // int64 [B]
}

// Upload copies d to dev.
func Upload(d *Dataset, dev torch.Device) (*DeviceDataset, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	out := &DeviceDataset{N: d.N, C: d.C, H: d.H, W: d.W, Device: dev}
	err := torch.Catch(func() {
		s := torch.NewScope()
		defer s.Close()
		n := int64(d.N)
		out.Pixels = torch.FromSlice(d.Pixels, n, int64(d.C), int64(d.H), int64(d.W)).On(dev)
		out.Coarse = torch.FromSlice(d.Coarse, n).On(dev)
		out.Fine = torch.FromSlice(d.Fine, n).On(dev)
		out.Group = torch.FromSlice(d.Group, n).On(dev)
		torch.Persist(out.Pixels, out.Coarse, out.Fine, out.Group)
	})
	if err != nil {
		return nil, fmt.Errorf("uploading %s (%d MB) to %v: %w", d.Name, len(d.Pixels)>>20, dev, err)
	}
	return out, nil
}

// Gather selects a batch on the device; its tensors belong to the caller's scope. at holds idx as an
// int64 tensor on the device (the Loader narrows it from the epoch's order, uploaded once an epoch),
// or is nil: then idx is uploaded, one host-to-device copy.
func (d *DeviceDataset) Gather(idx []int64, at *torch.Tensor) (b Batch, err error) {
	for _, i := range idx {
		if i < 0 || i >= int64(d.N) {
			return b, fmt.Errorf("batch index %d out of range [0,%d)", i, d.N)
		}
	}
	err = torch.Catch(func() {
		s := torch.NewScope()
		defer s.Close()
		it := at
		if it == nil {
			it = torch.FromSlice(idx).On(d.Device)
		}
		b = Batch{Index: append([]int64(nil), idx...), Images: d.Pixels.IndexSelect(0, it),
			Coarse: d.Coarse.IndexSelect(0, it), Fine: d.Fine.IndexSelect(0, it), Group: d.Group.IndexSelect(0, it)}
		s.Keep(b.Images, b.Coarse, b.Fine, b.Group)
	})
	return b, err
}

// Free releases the device memory now.
func (d *DeviceDataset) Free() {
	for _, t := range []*torch.Tensor{d.Pixels, d.Coarse, d.Fine, d.Group} {
		t.Free()
	}
}
