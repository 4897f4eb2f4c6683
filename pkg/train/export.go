package train

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

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
// ResNet whose fc is Identity (and, for the CIFAR stem, conv1 3x3/1 and maxpool Identity). A
// two-backbone run writes two such files, out and out with "_b" before its extension (backbone B);
// its representation is both models' L2-normalised features concatenated, A first. It returns the
// files written.
func ExportEncoder(checkpointPath, out string) ([]string, error) {
	ck, err := ReadCheckpoint(checkpointPath)
	if err != nil {
		return nil, err
	}
	defer ck.Free()
	files := []string{out}
	prefixes := []string{"model.encoder"}
	if ck.Config.Method.TwoBackbones() {
		ext := filepath.Ext(out)
		files = append(files, strings.TrimSuffix(out, ext)+"_b"+ext)
		prefixes = append(prefixes, "model.encoder_b")
	}
	for i, file := range files {
		enc := ck.withPrefix(prefixes[i])
		if len(enc) == 0 {
			return nil, fmt.Errorf("checkpoint %s holds no %s", checkpointPath, prefixes[i])
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
		if len(files) == 2 {
			meta["backbone"] = string(rune('a' + i))
			meta["representation"] = "concatenation of the L2-normalised features of " + filepath.Base(files[0]) + " and " + filepath.Base(files[1])
		}
		if err := nn.SaveState(file, named, meta); err != nil {
			return nil, err
		}
	}
	return files, nil
}
