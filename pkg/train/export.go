package train

import (
	"fmt"
	"strconv"

	"github.com/spreadtrain/spreadtrain/pkg/nn"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// RunCheckpoint picks a run's best checkpoint, or its last one when no validation ever ran.
func RunCheckpoint(runDir, which string) (string, error) {
	switch which {
	case "best", "":
		p := CheckpointPath(runDir, true)
		if fileExists(p) || which == "best" {
			return p, nil
		}
		return CheckpointPath(runDir, false), nil
	case "last":
		return CheckpointPath(runDir, false), nil
	}
	return "", fmt.Errorf("--checkpoint %q: want best or last", which)
}

// ExportEncoder writes the encoder's weights from a checkpoint under torchvision's parameter names
// (timm's VisionTransformer names for the ViT)
// (conv1.weight, layer1.0.bn1.running_mean, ...), loadable with strict=True into a torchvision
// ResNet whose fc is Identity (and, for the CIFAR stem, conv1 3x3/1 and maxpool Identity).
func ExportEncoder(checkpointPath, out string) error {
	ck, err := ReadCheckpoint(checkpointPath)
	if err != nil {
		return err
	}
	defer ck.Free()
	enc := ck.withPrefix("model.encoder")
	if len(enc) == 0 {
		return fmt.Errorf("checkpoint %s holds no encoder", checkpointPath)
	}
	var named []torch.Named
	for name, t := range enc {
		named = append(named, torch.Named{Name: name, Tensor: t})
	}
	m := ck.Config.Model
	meta := map[string]string{
		"arch": m.Arch, "stem": m.Stem, "width": strconv.FormatFloat(m.Width, 'g', -1, 64),
		"base_width": strconv.FormatInt(m.BaseWidth(), 10), "method": ck.Config.Method.Name,
		"source": checkpointPath, "format": "torchvision-resnet-encoder",
	}
	if m.Arch == "vit" {
		meta["format"] = "vit-encoder-timm-names"
	}
	return nn.SaveState(out, named, meta)
}
