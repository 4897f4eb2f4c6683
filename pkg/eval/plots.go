package eval

import (
	"fmt"
	"math/rand"

	"github.com/spreadtrain/spreadtrain/pkg/plot"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// EmbeddingPlot writes a PNG of the L2-normalised rows of x projected on their first two principal
// components, coloured by label (fine labels show collapse vs spread). At most maxPoints rows are
// drawn (a seeded random subsample; 0 means 5000). names maps labels to legend text (optional).
func EmbeddingPlot(path, title string, x *torch.Tensor, labels []int64, names map[int64]string, maxPoints int, seed int64) error {
	var data []float64
	var lab []int64
	var n, d int64
	err := guard("embedding plot", func() error {
		var err error
		n, d, err = checkMatrix("embedding plot", x)
		if err != nil {
			return err
		}
		if err := checkLabels("embedding plot labels", labels, n, true); err != nil {
			return err
		}
		if maxPoints == 0 {
			maxPoints = 5000
		}
		if maxPoints < 2 {
			return fmt.Errorf("maxPoints %d: need at least 2", maxPoints)
		}
		idx := subsample(int(n), maxPoints, rand.New(rand.NewSource(seed)))
		z := floatFeatures(x).To(torch.Float64).Normalize(2, 1, 1e-12)
		z = z.IndexSelect(0, longOn(toInt64(idx), z.Device()))
		data = z.Float64s()
		lab = make([]int64, len(idx))
		for i, j := range idx {
			lab[i] = labels[j]
		}
		n = int64(len(idx))
		return nil
	})
	if err != nil {
		return err
	}
	xy, ex, err := plot.PCA2(data, int(n), int(d))
	if err != nil {
		return err
	}
	return plot.Embedding2D(path, fmt.Sprintf("%s (PC1 %.0f%%, PC2 %.0f%% of variance)", title, 100*ex[0], 100*ex[1]), xy, lab, names)
}
