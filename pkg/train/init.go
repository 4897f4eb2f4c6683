package train

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spreadtrain/spreadtrain/pkg/nn"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// loadInit copies model.init's pretrained weights into the encoder. The file uses torchvision's
// names (timm's for the ViT), as `export` writes them; a torchvision checkpoint converts with
//
//	from safetensors.torch import save_file
//	save_file(torchvision.models.resnet50(weights="IMAGENET1K_V2").state_dict(), "r50.safetensors")
//
// Every tensor must be on both sides with the same shape, except those named in model.init_skip
// (a name, or a prefix ending in "."): file tensors so named are not loaded (a classifier's "fc."),
// and encoder tensors so named keep their fresh initialisation ("conv1.weight" when the first conv
// takes 1 channel, or has the CIFAR stem's 3x3 shape). A skip entry that matches nothing is an error,
// so a typo cannot turn a partial load into a silent one.
//
// A two-backbone method starts both backbones from the file (initModel).
func loadInit(enc *nn.Encoder, mc ModelConfig) error {
	if mc.Init == "" {
		return nil
	}
	saved, _, err := nn.ReadState(mc.Init)
	if err != nil {
		return fmt.Errorf("model.init: %w", err)
	}
	defer nn.FreeState(saved)
	used := make([]bool, len(mc.InitSkip))
	skip := func(name string) bool {
		hit := false
		for i, s := range mc.InitSkip {
			if name == s || (strings.HasSuffix(s, ".") && strings.HasPrefix(name, s)) {
				used[i], hit = true, true
			}
		}
		return hit
	}
	var named []torch.Named
	for _, n := range append(enc.Parameters(), enc.Buffers()...) {
		if !skip(n.Name) {
			named = append(named, n)
		}
	}
	kept := map[string]*torch.Tensor{}
	for name, t := range saved {
		if !skip(name) {
			kept[name] = t
		}
	}
	var unused []string
	for i, u := range used {
		if !u {
			unused = append(unused, mc.InitSkip[i])
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		return fmt.Errorf("model.init_skip %v: no tensor of %s or of the encoder has that name", unused, mc.Init)
	}
	if err := nn.LoadInto(named, kept, true); err != nil {
		return fmt.Errorf("model.init %s: %w (name tensors not to load in model.init_skip)", mc.Init, err)
	}
	return nil
}

// initModel loads model.init into every backbone of m.
func initModel(m *Model, mc ModelConfig) error {
	if err := loadInit(m.Encoder, mc); err != nil {
		return err
	}
	if m.EncoderB == nil {
		return nil
	}
	if err := loadInit(m.EncoderB, mc); err != nil {
		return fmt.Errorf("second backbone: %w", err)
	}
	return nil
}
