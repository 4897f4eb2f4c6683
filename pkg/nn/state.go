package nn

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/spreadtrain/spreadtrain/pkg/safetensors"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

var toSafetensors = map[torch.DType]string{
	torch.Float32: safetensors.F32, torch.Float64: safetensors.F64, torch.Float16: safetensors.F16,
	torch.BFloat16: safetensors.BF16, torch.Int64: safetensors.I64, torch.Int32: safetensors.I32,
	torch.Int8: safetensors.I8, torch.Uint8: safetensors.U8, torch.Bool: safetensors.BOOL,
}

// SaveState writes named tensors (moved to the CPU) and string metadata to a safetensors file,
// atomically: a crash leaves either the old file or the new one.
func SaveState(path string, named []torch.Named, meta map[string]string) error {
	f := &safetensors.File{Tensors: map[string]safetensors.Tensor{}, Metadata: meta}
	err := torch.Catch(func() {
		for _, n := range named {
			dt, ok := toSafetensors[n.Tensor.DType()]
			if !ok {
				panic(&torch.Error{Op: "save", Msg: fmt.Sprintf("%s: dtype %v has no safetensors name", n.Name, n.Tensor.DType())})
			}
			if _, dup := f.Tensors[n.Name]; dup {
				panic(&torch.Error{Op: "save", Msg: "duplicate tensor name " + n.Name})
			}
			shape := n.Tensor.Shape()
			ishape := make([]int, len(shape))
			for i, s := range shape {
				ishape[i] = int(s)
			}
			f.Tensors[n.Name] = safetensors.Tensor{DType: dt, Shape: ishape, Data: n.Tensor.Bytes()}
		}
	})
	if err != nil {
		return fmt.Errorf("saving %s: %w", path, err)
	}
	return safetensors.WriteFile(path, f)
}

// ReadState reads every tensor of a safetensors file as CPU tensors outside any scope.
func ReadState(path string) (map[string]*torch.Tensor, map[string]string, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	out := map[string]*torch.Tensor{}
	err = torch.Catch(func() {
		for name, t := range f.Tensors {
			dt, ok := fromSafetensors(t.DType)
			if !ok {
				panic(&torch.Error{Op: "load", Msg: fmt.Sprintf("%s: dtype %s is not supported", name, t.DType)})
			}
			shape := make([]int64, len(t.Shape))
			for i, s := range t.Shape {
				shape[i] = int64(s)
			}
			x := torch.FromBytes(t.Data, dt, shape...)
			torch.Persist(x)
			out[name] = x
		}
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, f.Metadata, nil
}

func fromSafetensors(s string) (torch.DType, bool) {
	for k, v := range toSafetensors {
		if v == s {
			return k, true
		}
	}
	return 0, false
}

// LoadInto copies saved tensors into named parameters/buffers in place (on their device and dtype).
// With strict, every name must be present on both sides, as load_state_dict(strict=True).
func LoadInto(named []torch.Named, saved map[string]*torch.Tensor, strict bool) error {
	var missing, mismatched []string
	want := map[string]bool{}
	for _, n := range named {
		want[n.Name] = true
		s, ok := saved[n.Name]
		if !ok {
			missing = append(missing, n.Name)
			continue
		}
		if !slices.Equal(s.Shape(), n.Tensor.Shape()) {
			mismatched = append(mismatched, fmt.Sprintf("%s: saved %v, model %v", n.Name, s.Shape(), n.Tensor.Shape()))
		}
	}
	var unexpected []string
	for name := range saved {
		if !want[name] {
			unexpected = append(unexpected, name)
		}
	}
	sort.Strings(unexpected)
	if len(mismatched) > 0 {
		return fmt.Errorf("shape mismatch: %s", strings.Join(mismatched, "; "))
	}
	if strict && (len(missing) > 0 || len(unexpected) > 0) {
		return fmt.Errorf("state does not match the model: missing %v, unexpected %v", missing, unexpected)
	}
	return torch.Catch(func() {
		torch.NoGrad(func() {
			for _, n := range named {
				if s, ok := saved[n.Name]; ok {
					torch.WithScope(func() { n.Tensor.CopyFrom(s) })
				}
			}
		})
	})
}

// FreeState releases tensors returned by ReadState.
func FreeState(m map[string]*torch.Tensor) {
	for _, t := range m {
		t.Free()
	}
}
