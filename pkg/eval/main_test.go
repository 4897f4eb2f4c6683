package eval

import (
	"math/rand"
	"os"
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

func TestMain(m *testing.M) {
	torch.SetNumThreads(1)
	os.Exit(m.Run())
}

// gaussianClasses draws n points in d dims from c classes: class k has mean sep*e_k (k < d) and unit
// noise. It returns features (outside any scope) and labels.
func gaussianClasses(n, d, c int, sep float64, seed int64) (*torch.Tensor, []int64) {
	rng := rand.New(rand.NewSource(seed))
	x := make([]float32, n*d)
	y := make([]int64, n)
	for i := 0; i < n; i++ {
		k := rng.Intn(c)
		y[i] = int64(k)
		for j := 0; j < d; j++ {
			x[i*d+j] = float32(rng.NormFloat64())
		}
		x[i*d+k%d] += float32(sep)
	}
	return torch.FromSlice(x, int64(n), int64(d)), y
}
