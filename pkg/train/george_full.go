package train

import (
	"fmt"
	"math"
	"time"

	"github.com/spreadtrain/spreadtrain/pkg/data"
	"github.com/spreadtrain/spreadtrain/pkg/eval"
	"github.com/spreadtrain/spreadtrain/pkg/nn"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// GeorgeFullConfig configures GEORGE's full-network variant (eval --george-full-epochs).
type GeorgeFullConfig struct {
	Epochs      int     // passes over the training split; 0 leaves the variant out
	LR          float64 // AdamW learning rate of encoder and head; default 1e-4
	WeightDecay float64 // default 1e-4
	Eta         float64 // group-weight step size; default 0.01
	Adjustment  float64 // Sagawa et al.'s group adjustment C; default 0
	BatchSize   int     // default 128
	Seed        uint64
}

func (c *GeorgeFullConfig) defaults() {
	if c.LR == 0 {
		c.LR = 1e-4
	}
	if c.WeightDecay == 0 {
		c.WeightDecay = 1e-4
	}
	if c.Eta == 0 {
		c.Eta = 0.01
	}
	if c.BatchSize == 0 {
		c.BatchSize = 128
	}
}

// georgeFull is GEORGE's full-network variant (Sohoni et al. 2020): the encoder and a new linear head
// are trained together on augmented training images with online group DRO over the found groups
// (trainFound: each training row's (class, cluster) id from the frozen-feature clustering). After
// every epoch the model is scored on validation by its worst found-group accuracy (valFound); the
// best epoch (the earliest on a tie) is the result, reported on the test split's true groups, which
// no choice sees. It changes tr.model's encoder weights: run it after everything else reads them.
func georgeFull(tr *trained, train, val, test *data.Dataset, trainFound, valFound []int64, cfg GeorgeFullConfig) (*eval.DROResult, error) {
	start := time.Now()
	cfg.defaults()
	if len(trainFound) != train.N || len(valFound) != val.N {
		return nil, fmt.Errorf("george full network: %d found groups for %d training rows, %d for %d validation rows",
			len(trainFound), train.N, len(valFound), val.N)
	}
	// dense group indices 0..K-1 for the DRO weights; the result names groups by their found ids
	index, ids := map[int64]int64{}, []int64{}
	groupOf := make([]int64, train.N)
	sizes := []float64{}
	for i, g := range trainFound {
		k, ok := index[g]
		if !ok {
			k = int64(len(ids))
			index[g] = k
			ids = append(ids, g)
			sizes = append(sizes, 0)
		}
		groupOf[i] = k
		sizes[k]++
	}
	k := int64(len(ids))
	grouped := *train
	grouped.Group = groupOf // the loader serves each row's dense found-group index
	loader, err := data.NewLoader(&grouped, tr.dev, data.LoaderOptions{SamplerOptions: data.SamplerOptions{
		BatchSize: cfg.BatchSize, Seed: cfg.Seed}})
	if err != nil {
		return nil, err
	}
	defer loader.Close()

	var head *torch.Module
	var q, adjust *torch.Tensor // DRO weights q_g and C / sqrt(n_g), [K] on the device
	defer func() {
		if head != nil {
			head.Free()
		}
	}()
	if err := torch.Catch(func() {
		head = torch.NewLinear(tr.model.EmbedDim(), int64(len(train.CoarseNames)), true)
		head.ToDevice(tr.dev)
		q = torch.Full([]int64{k}, 1/float64(k), torch.Float32, tr.dev)
		adj := make([]float32, k)
		for g, n := range sizes {
			adj[g] = float32(cfg.Adjustment / math.Sqrt(n))
		}
		adjust = torch.FromSlice(adj).On(tr.dev)
		torch.Persist(q)
		torch.Persist(adjust)
	}); err != nil {
		return nil, fmt.Errorf("george full network: %w", err)
	}
	params := nn.Prefixed("encoder", tr.model.Encoder.Parameters())
	if tr.model.EncoderB != nil {
		params = append(params, nn.Prefixed("encoder_b", tr.model.EncoderB.Parameters())...)
	}
	params = append(params, nn.Prefixed("head", head.Parameters())...)
	opt, err := nn.NewOptimizer(nn.OptimConfig{Name: "adamw", LR: cfg.LR, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8,
		WeightDecay: cfg.WeightDecay}, params)
	if err != nil {
		return nil, fmt.Errorf("george full network: %w", err)
	}

	res := &eval.DROResult{Eta: cfg.Eta, Adjustment: cfg.Adjustment, WeightDecay: cfg.WeightDecay, NumTrainGroup: int(k)}
	best := math.Inf(-1)
	for epoch := 1; epoch <= cfg.Epochs; epoch++ {
		tr.model.SetEncodersTrain(true)
		var correct, seen float64
		err := eachAugmentedBatch(loader, tr.aug, func(b data.Batch, images *torch.Tensor) error {
			logits := head.Forward(tr.model.Embed(images))
			loss := torch.CrossEntropy(logits, b.Coarse, torch.ReduceNone, 0) // [B]
			member := b.Group.OneHot(k).To(torch.Float32)                     // [B, K]
			count := member.SumDims(false, 0)
			groupLoss := member.Mul(loss.Unsqueeze(1)).SumDims(false, 0).Div(count.ClampMin(1))
			updateGroupWeights(q, groupLoss, count, adjust, cfg.Eta)
			groupLoss.Mul(q).Sum().Backward()
			opt.Step(cfg.LR)
			opt.ZeroGrad()
			correct += logits.Argmax(1, false).Eq(b.Coarse).To(torch.Float64).Sum().Item()
			seen += float64(b.Coarse.Size(0))
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("george full network: %w", err)
		}
		valPred, err := predictions(tr, head, val)
		if err != nil {
			return nil, err
		}
		_, valWorst := eval.GroupAccuracies(valFound, valPred, val.Coarse)
		if valWorst <= best {
			continue
		}
		best = valWorst
		testPred, err := predictions(tr, head, test)
		if err != nil {
			return nil, err
		}
		w := valWorst
		res.SelectedStep, res.ValWorstGroupAcc, res.ValPredictions = epoch, &w, valPred
		res.TrainAcc = correct / max(seen, 1) // on the epoch's augmented images
		res.PerGroup, res.WorstGroupAcc = eval.GroupAccuracies(test.Group, testPred, test.Coarse)
		res.TestAcc = eval.Accuracy(testPred, test.Coarse)
		res.Predictions = testPred
		qs := q.Float64s()
		res.GroupWeights = res.GroupWeights[:0]
		for g, id := range ids {
			res.GroupWeights = append(res.GroupWeights, eval.GroupWeight{Group: id, N: int(sizes[g]), Weight: qs[g]})
		}
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// updateGroupWeights is online group DRO's step (Sagawa et al. 2020, Algorithm 1, with the group
// adjustment): q_g <- q_g exp(eta (loss_g + C / sqrt(n_g))) for each group g present in the batch
// (count_g > 0), then q is renormalised. All [K], in place on q.
func updateGroupWeights(q, groupLoss, count, adjust *torch.Tensor, eta float64) {
	torch.NoGrad(func() {
		torch.WithScope(func() {
			step := groupLoss.Detach().Add(adjust).MulScalar(eta).Mul(count.GtScalar(0).To(q.DType()))
			next := q.Mul(step.Exp())
			q.CopyFrom(next.Div(next.Sum()))
		})
	})
}

// predictions are the head's classes for every row of d through the encoder in evaluation mode.
func predictions(tr *trained, head *torch.Module, d *data.Dataset) ([]int64, error) {
	f, err := Features(tr.model, tr.aug, d, tr.dev, 256)
	if err != nil {
		return nil, fmt.Errorf("george full network: %w", err)
	}
	defer f.Free()
	var pred []int64
	err = torch.Catch(func() {
		torch.NoGrad(func() {
			torch.WithScope(func() { pred = head.Forward(f.On(tr.dev)).Argmax(1, false).On(torch.CPU).Int64s() })
		})
	})
	if err != nil {
		return nil, fmt.Errorf("george full network: %w", err)
	}
	return pred, nil
}
