package eval

import (
	"fmt"
	"math"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// KNNConfig configures the weighted kNN classifier of InstDisc / SupCon's evaluation code: cosine
// similarity to the K nearest training points, each voting for its label with weight exp(sim/T).
type KNNConfig struct {
	K           int     // neighbours; default 200 (capped at the training set size)
	Temperature float64 // T; default 0.1
	BlockSize   int     // test rows per block; default keeps a block's [B, Ntrain] similarities near 64 MiB
	ExcludeSelf bool    // leave-one-out when test and train are the same rows (drops the top match)
}

// KNNResult is a kNN classifier's test accuracy.
type KNNResult struct {
	K           int        `json:"k"`
	Temperature float64    `json:"temperature"`
	Accuracy    float64    `json:"accuracy"`
	PerClass    []GroupAcc `json:"per_class"`
	PerGroup    []GroupAcc `json:"per_group,omitempty"`
	Predictions []int64    `json:"-"`
}

// KNN classifies the rows of test by temperature-weighted votes of their K most cosine-similar
// training rows, in blocks of test rows to bound memory.
func KNN(train, test Data, cfg KNNConfig) (*KNNResult, error) {
	var res *KNNResult
	err := guard("knn", func() error {
		if cfg.K == 0 {
			cfg.K = 200
		}
		if cfg.K < 1 {
			return fmt.Errorf("k = %d: must be >= 1", cfg.K)
		}
		if cfg.Temperature == 0 {
			cfg.Temperature = 0.1
		}
		if !(cfg.Temperature > 0) || math.IsInf(cfg.Temperature, 0) {
			return fmt.Errorf("temperature %v: must be a positive number", cfg.Temperature)
		}
		if cfg.BlockSize < 0 {
			return fmt.Errorf("block size %d: must be >= 0", cfg.BlockSize)
		}
		ntr, nte, _, err := checkSplits(train, test)
		if err != nil {
			return err
		}
		extra := int64(0)
		if cfg.ExcludeSelf {
			if nte != ntr {
				return fmt.Errorf("ExcludeSelf needs test to be the training rows, got %d and %d rows", nte, ntr)
			}
			extra = 1
		}
		k := min(int64(cfg.K), ntr-extra)
		if k < 1 {
			return fmt.Errorf("the training set has %d rows: too few for kNN", ntr)
		}
		c := maxLabel(train.Labels, test.Labels) + 1
		dev := train.X.Device()
		xtr := floatFeatures(train.X).Normalize(2, 1, 1e-12)
		xte := floatFeatures(test.X).On(dev).Normalize(2, 1, 1e-12)
		ytr := longOn(train.Labels, dev)
		block := int64(cfg.BlockSize)
		if block == 0 {
			block = max(1, (16<<20)/ntr)
		}
		pred := make([]int64, 0, nte)
		for s := int64(0); s < nte; s += block {
			b := min(block, nte-s)
			torch.WithScope(func() {
				sim := xte.Narrow(0, s, b).MM(xtr.T()) // [b, Ntrain]
				vals, idx := sim.TopK(k+extra, 1, true)
				if extra > 0 {
					vals, idx = vals.Narrow(1, 1, k), idx.Narrow(1, 1, k)
				}
				lab := ytr.IndexSelect(0, idx.Reshape(-1)).Reshape(b, k)
				w := vals.DivScalar(cfg.Temperature).Exp()
				votes := torch.Zeros([]int64{b, c}, torch.Float32, dev).ScatterAdd(1, lab, w)
				pred = append(pred, votes.Argmax(1, false).Int64s()...)
			})
		}
		res = &KNNResult{K: int(k), Temperature: cfg.Temperature, Accuracy: Accuracy(pred, test.Labels),
			PerClass: accuracyBy(test.Labels, pred, test.Labels), Predictions: pred}
		if test.Groups != nil {
			res.PerGroup = accuracyBy(test.Groups, pred, test.Labels)
		}
		return nil
	})
	return res, err
}
