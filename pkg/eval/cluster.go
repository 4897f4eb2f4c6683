package eval

import (
	"fmt"
	"math"
	"math/rand"
	"sort"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// ClusterConfig configures subgroup discovery: each class's embeddings are clustered (GEORGE, Sohoni
// et al. 2020) with k-means (k-means++ init, seeded) or a diagonal Gaussian mixture (EM, initialised
// from k-means), choosing k in [KMin, KMax] by the silhouette score on a capped subsample.
type ClusterConfig struct {
	Method           string // "kmeans" (default) or "gmm"
	KMin, KMax       int    // defaults 2 and 10; capped at the class size - 1
	SilhouetteSample int    // rows per class used for the silhouette; default 2000
	FitSample        int    // rows per class the clusters are fitted on (all rows are then assigned); default 10000
	NInit            int    // k-means restarts, k-means++ seeded (best inertia kept); default 3
	MaxIter          int    // Lloyd / EM iterations; default 100 (tolerances as sklearn: 1e-4 x mean variance, 1e-3 log-likelihood)
	RawFeatures      bool   // cluster the raw features instead of the L2-normalised ones
	Seed             int64
}

func (c *ClusterConfig) defaults() error {
	switch c.Method {
	case "":
		c.Method = "kmeans"
	case "kmeans", "gmm":
	default:
		return fmt.Errorf("cluster method %q: want kmeans or gmm", c.Method)
	}
	if c.KMin == 0 {
		c.KMin = 2
	}
	if c.KMax == 0 {
		c.KMax = max(10, c.KMin)
	}
	if c.KMin < 1 || c.KMax < c.KMin {
		return fmt.Errorf("cluster k range [%d, %d]: need 1 <= kmin <= kmax", c.KMin, c.KMax)
	}
	if c.SilhouetteSample == 0 {
		c.SilhouetteSample = 2000
	}
	if c.NInit == 0 {
		c.NInit = 3
	}
	if c.FitSample == 0 {
		c.FitSample = 10000
	}
	if c.FitSample < 3 {
		return fmt.Errorf("cluster fit sample %d: must be >= 3", c.FitSample)
	}
	if c.MaxIter == 0 {
		c.MaxIter = 100
	}
	if c.SilhouetteSample < 3 || c.NInit < 1 || c.MaxIter < 1 {
		return fmt.Errorf("cluster settings: silhouette sample (%d) must be >= 3, restarts (%d) and iterations (%d) >= 1",
			c.SilhouetteSample, c.NInit, c.MaxIter)
	}
	return nil
}

// ClassClusters is the clustering chosen for one class.
type ClassClusters struct {
	Class      int64         `json:"class"`
	N          int           `json:"n"`
	K          int           `json:"k"`
	Silhouette float64       `json:"silhouette"`
	Scores     []KSilhouette `json:"scores"` // silhouette of every k tried
	Sizes      []int         `json:"sizes"`
	ARI        *float64      `json:"ari,omitempty"` // vs the fine labels / true groups given to Score
	NMI        *float64      `json:"nmi,omitempty"`
}

// KSilhouette is the silhouette score of one candidate k.
type KSilhouette struct {
	K          int     `json:"k"`
	Silhouette float64 `json:"silhouette"`
}

// Subgroups is the result of subgroup discovery: every row gets a global group id, the index of its
// (class, cluster) pair in Pairs.
type Subgroups struct {
	Method  string          `json:"method"`
	Classes []ClassClusters `json:"classes"`
	Pairs   [][2]int64      `json:"-"` // (class, cluster) of each global group id
	Assign  []int64         `json:"-"` // global group id per row
	Cluster []int64         `json:"-"` // cluster index within its class per row
	centers [][]float32     // mean (clustered) feature of each global group id, for AssignRows
	raw     bool            // the clusters live in the raw feature space (else L2-normalised)
	// Scores against a reference labelling (set by Score): the true groups where the data has them,
	// else the fine labels.
	ClusterScore
	// VsFine scores the same clusters against the fine labels when the primary reference is the true
	// groups and fine labels exist too (coloured MNIST: groups = (class, colour), fine = digit).
	VsFine *ClusterScore `json:"vs_fine,omitempty"`
}

// ClusterScore is how well the (class, cluster) groups recover a reference labelling.
type ClusterScore struct {
	Reference   string   `json:"reference,omitempty"`     // "groups" or "fine"
	ARI         *float64 `json:"ari,omitempty"`           // global (class, cluster) ids vs the reference
	NMI         *float64 `json:"nmi,omitempty"`           //
	PerClassARI *float64 `json:"per_class_ari,omitempty"` // size-weighted mean of per-class ARI
	PerClassNMI *float64 `json:"per_class_nmi,omitempty"`
	// SubgroupAcc is GEORGE's subgroup identification accuracy: each cluster is mapped to the
	// reference subgroup most of its rows belong to, and this is the share of rows whose cluster maps
	// to their own subgroup (cluster purity; more clusters can only raise it, so read it with k).
	SubgroupAcc *float64      `json:"subgroup_acc,omitempty"`
	perClass    [][2]*float64 // ARI and NMI of each of Subgroups.Classes, in order
}

// DiscoverSubgroups clusters the rows of each class of d.Labels separately. Classes with fewer than
// 3 rows (too few for a silhouette) are kept as one cluster.
func DiscoverSubgroups(d Data, cfg ClusterConfig) (*Subgroups, error) {
	var res *Subgroups
	err := guard("subgroup discovery", func() error {
		if err := cfg.defaults(); err != nil {
			return err
		}
		n, _, err := checkData("features", d)
		if err != nil {
			return err
		}
		x := floatFeatures(d.X)
		if !cfg.RawFeatures {
			x = x.Normalize(2, 1, 1e-12)
		}
		byClass := map[int64][]int64{}
		for i, l := range d.Labels {
			byClass[l] = append(byClass[l], int64(i))
		}
		classes := make([]int64, 0, len(byClass))
		for c := range byClass {
			classes = append(classes, c)
		}
		sort.Slice(classes, func(i, j int) bool { return classes[i] < classes[j] })
		res = &Subgroups{Method: cfg.Method, Assign: make([]int64, n), Cluster: make([]int64, n), raw: cfg.RawFeatures}
		for ci, c := range classes {
			rows := byClass[c]
			var cc ClassClusters
			var assign []int64
			var cerr error
			torch.WithScope(func() {
				xc := x.IndexSelect(0, longOn(rows, x.Device()))
				cc, assign, cerr = clusterClass(xc, cfg, cfg.Seed+int64(ci)*7919)
				if cerr == nil {
					// cluster means: [k, n] one-hot over the rows times the rows, over the sizes
					oh := longOn(assign, x.Device()).OneHot(int64(cc.K)).To(torch.Float32)
					means := oh.T().MM(xc).Div(oh.SumDims(false, 0).ClampMin(1).Unsqueeze(1)).On(torch.CPU).Contiguous()
					flat, dim := means.Float32s(), int(xc.Size(1))
					for k := 0; k < cc.K; k++ {
						res.centers = append(res.centers, flat[k*dim:(k+1)*dim])
					}
				}
			})
			if cerr != nil {
				return fmt.Errorf("class %d: %w", c, cerr)
			}
			cc.Class = c
			base := int64(len(res.Pairs))
			for k := 0; k < cc.K; k++ {
				res.Pairs = append(res.Pairs, [2]int64{c, int64(k)})
			}
			for i, r := range rows {
				res.Cluster[r] = assign[i]
				res.Assign[r] = base + assign[i]
			}
			res.Classes = append(res.Classes, cc)
		}
		return nil
	})
	return res, err
}

// AssignRows gives rows outside the clustered set (a validation split) the global group id of the
// nearest cluster mean of their own class, in the space the clusters were found in. A class the
// clustering never saw is an error.
func (s *Subgroups) AssignRows(d Data) ([]int64, error) {
	var out []int64
	err := guard("assign rows to subgroups", func() error {
		n, dim, err := checkData("rows", d)
		if err != nil {
			return err
		}
		if len(s.centers) != len(s.Pairs) || len(s.centers) == 0 {
			return fmt.Errorf("the subgroups carry no cluster means (use DiscoverSubgroups' result)")
		}
		if int(dim) != len(s.centers[0]) {
			return fmt.Errorf("rows have %d features, the clusters %d", dim, len(s.centers[0]))
		}
		x := floatFeatures(d.X)
		if !s.raw {
			x = x.Normalize(2, 1, 1e-12)
		}
		flat := make([]float32, 0, len(s.centers)*int(dim))
		for _, c := range s.centers {
			flat = append(flat, c...)
		}
		cen := torch.FromSlice(flat, int64(len(s.centers)), dim).On(x.Device())
		dist := sqDist(x, x.Square().SumDims(false, 1), cen).On(torch.CPU).Contiguous().Float32s()
		out = make([]int64, n)
		for i, l := range d.Labels {
			best, bestD := int64(-1), float32(math.Inf(1))
			for g, p := range s.Pairs {
				if dd := dist[i*len(s.Pairs)+g]; p[0] == l && dd < bestD {
					best, bestD = int64(g), dd
				}
			}
			if best < 0 {
				return fmt.Errorf("row %d: class %d has no clusters (it was not in the clustered set)", i, l)
			}
			out[i] = best
		}
		return nil
	})
	return out, err
}

// clusterClass picks k by silhouette and returns the clustering of the rows of xc.
func clusterClass(xc *torch.Tensor, cfg ClusterConfig, seed int64) (ClassClusters, []int64, error) {
	n := int(xc.Size(0))
	cc := ClassClusters{N: n}
	kmax := min(cfg.KMax, n-1)
	if n < 3 || kmax < 2 || kmax < cfg.KMin {
		cc.K, cc.Sizes = 1, []int{n}
		return cc, make([]int64, n), nil
	}
	rng := rand.New(rand.NewSource(seed))
	sidx := subsample(n, cfg.SilhouetteSample, rng)
	// the subsample is the same for every k: its distance matrix is computed once
	sil := newSilhouetteDistances(xc.IndexSelect(0, longOn(toInt64(sidx), xc.Device())))
	xfit := xc
	if fidx := subsample(n, cfg.FitSample, rng); len(fidx) < n {
		xfit = xc.IndexSelect(0, longOn(toInt64(fidx), xc.Device()))
	}
	best := math.Inf(-1)
	var bestAssign []int64
	for k := max(cfg.KMin, 1); k <= kmax; k++ {
		var assign []int64
		var score float64
		var err error
		torch.WithScope(func() {
			if cfg.Method == "gmm" {
				assign = gmmDiag(xfit, xc, k, cfg, rng)
			} else {
				_, cen := kmeans(xfit, k, cfg.NInit, cfg.MaxIter, rng)
				assign = sqDist(xc, xc.Square().SumDims(false, 1), cen).Argmin(1, false).Int64s()
				cen.Free()
			}
			if k == 1 {
				score = 0
				return
			}
			sl := make([]int64, len(sidx))
			for i, j := range sidx {
				sl[i] = assign[j]
			}
			if distinct(sl) < 2 {
				score = -1 // a degenerate clustering (all one cluster on the sample)
				return
			}
			score, err = sil.score(sl)
		})
		if err != nil {
			return cc, nil, err
		}
		cc.Scores = append(cc.Scores, KSilhouette{K: k, Silhouette: score})
		if score > best {
			best, bestAssign, cc.K = score, assign, k
		}
	}
	// relabel clusters densely by first appearance so ids are stable and gap-free
	dense := map[int64]int64{}
	for i, a := range bestAssign {
		if _, ok := dense[a]; !ok {
			dense[a] = int64(len(dense))
		}
		bestAssign[i] = dense[a]
	}
	cc.K = len(dense)
	cc.Silhouette = best
	cc.Sizes = make([]int, cc.K)
	for _, a := range bestAssign {
		cc.Sizes[a]++
	}
	return cc, bestAssign, nil
}

func distinct(v []int64) int {
	m := map[int64]bool{}
	for _, x := range v {
		m[x] = true
	}
	return len(m)
}

// kmeans runs Lloyd's algorithm with k-means++ seeding nInit times and returns the assignment with
// the lowest inertia (and the centers [k, D]).
func kmeans(x *torch.Tensor, k, nInit, maxIter int, rng *rand.Rand) ([]int64, *torch.Tensor) {
	n := x.Size(0)
	dev := x.Device()
	x64 := x.To(torch.Float32)                    // float32 Lloyd steps: twice as fast, ample for argmin on normalised rows
	sq := x64.Square().SumDims(false, 1)          // [n]
	tol := 1e-4 * x64.Var(false, 0).Mean().Item() // sklearn: tol x mean feature variance
	var bestAssign []int64
	var bestCenters *torch.Tensor
	bestInertia := math.Inf(1)
	for run := 0; run < nInit; run++ {
		torch.WithScope(func() {
			// k-means++: first center uniform, then each with probability proportional to D^2
			first := rng.Int63n(n)
			chosen := []int64{first}
			minD := sqDist(x64, sq, x64.Narrow(0, first, 1)).Squeeze(1).ClampMin(0)
			for len(chosen) < k {
				dv := minD.Float64s()
				total := 0.0
				for _, v := range dv {
					total += v
				}
				var next int64
				if total <= 0 {
					next = rng.Int63n(n)
				} else {
					r := rng.Float64() * total
					for i, v := range dv {
						r -= v
						if r <= 0 {
							next = int64(i)
							break
						}
					}
				}
				chosen = append(chosen, next)
				minD = minD.Minimum(sqDist(x64, sq, x64.Narrow(0, next, 1)).Squeeze(1).ClampMin(0))
			}
			centers := x64.IndexSelect(0, longOn(chosen, dev))
			var assign *torch.Tensor
			for it := 0; it < maxIter; it++ {
				d := sqDist(x64, sq, centers)
				assign = d.Argmin(1, false)
				oh := assign.OneHot(int64(k)).To(torch.Float32) // [n, k]
				counts := oh.SumDims(false, 0)                  // [k]
				sums := oh.T().MM(x64)                          // [k, D]
				// an empty cluster keeps its old center
				empty := counts.EqScalar(0).Unsqueeze(1)
				newC := torch.Where(empty, centers, sums.Div(counts.ClampMin(1).Unsqueeze(1)))
				shift := newC.Sub(centers).Square().Sum().Item()
				centers = newC
				if shift <= tol {
					break
				}
			}
			d := sqDist(x64, sq, centers)
			assign = d.Argmin(1, false)
			inertia := d.AMin(false, 1).ClampMin(0).Sum().Item()
			if inertia < bestInertia {
				bestInertia = inertia
				bestAssign = assign.Int64s()
				if bestCenters != nil {
					bestCenters.Free()
				}
				bestCenters = centers.Clone()
				torch.Persist(bestCenters)
			}
		})
	}
	return bestAssign, bestCenters
}

// sqDist is the [n, m] squared Euclidean distance between the rows of x (with squared norms sq) and c.
func sqDist(x, sq, c *torch.Tensor) *torch.Tensor {
	return sq.Unsqueeze(1).Sub(x.MM(c.T()).MulScalar(2)).Add(c.Square().SumDims(false, 1).Unsqueeze(0))
}

// gmmDiag fits a diagonal-covariance Gaussian mixture by EM from a k-means start and returns the
// most probable component of each row.
// The mixture is fitted on the rows of x and every row of all is assigned.
func gmmDiag(x, all *torch.Tensor, k int, cfg ClusterConfig, rng *rand.Rand) []int64 {
	init, centers := kmeans(x, k, cfg.NInit, cfg.MaxIter, rng)
	defer centers.Free()
	dev := x.Device()
	x64 := x.To(torch.Float64)
	n, d := x64.Size(0), x64.Size(1)
	x2 := x64.Square()
	// variance floor: a small fraction of the mean feature variance (sklearn's reg_covar is 1e-6 absolute)
	reg := math.Max(1e-6, 1e-3*x64.Var(false, 0).Mean().Item())
	resp := longOn(init, dev).OneHot(int64(k)).To(torch.Float64)
	var logResp *torch.Tensor
	prevLL := math.Inf(-1)
	for it := 0; it < cfg.MaxIter; it++ {
		// M step
		nk := resp.SumDims(false, 0).AddScalar(1e-10)        // [k]
		mu := resp.T().MM(x64).Div(nk.Unsqueeze(1))          // [k, D]
		ex2 := resp.T().MM(x2).Div(nk.Unsqueeze(1))          // [k, D]
		v := ex2.Sub(mu.Square()).ClampMin(0).AddScalar(reg) // [k, D]
		logpi := nk.DivScalar(float64(n)).Log()              // [k]
		iv := v.Reciprocal()                                 // [k, D]
		// E step: log N(x | mu, v) = -0.5 [ sum x^2/v - 2 x mu/v + mu^2/v + sum log v + D log 2pi ]
		quad := x2.MM(iv.T()).Sub(x64.MM(mu.Mul(iv).T()).MulScalar(2)).Add(mu.Square().Mul(iv).SumDims(false, 1).Unsqueeze(0))
		logdet := v.Log().SumDims(false, 1).AddScalar(float64(d) * math.Log(2*math.Pi))
		logp := quad.Add(logdet.Unsqueeze(0)).MulScalar(-0.5).Add(logpi.Unsqueeze(0)) // [n, k]
		lse := logp.LogSumExp(true, 1)
		logResp = logp.Sub(lse)
		resp = logResp.Exp()
		ll := lse.Mean().Item()
		if math.Abs(ll-prevLL) < 1e-3 { // sklearn's tol on the mean log-likelihood
			break
		}
		prevLL = ll
	}
	_ = logResp
	// assign every row by its most probable component under the final parameters
	nk := resp.SumDims(false, 0).AddScalar(1e-10)
	mu := resp.T().MM(x64).Div(nk.Unsqueeze(1))
	v := resp.T().MM(x2).Div(nk.Unsqueeze(1)).Sub(mu.Square()).ClampMin(0).AddScalar(reg)
	iv := v.Reciprocal()
	a64 := all.To(torch.Float64)
	quad := a64.Square().MM(iv.T()).Sub(a64.MM(mu.Mul(iv).T()).MulScalar(2)).Add(mu.Square().Mul(iv).SumDims(false, 1).Unsqueeze(0))
	logp := quad.Add(v.Log().SumDims(false, 1).Unsqueeze(0)).MulScalar(-0.5).Add(nk.DivScalar(float64(n)).Log().Unsqueeze(0))
	return logp.Argmax(1, false).Int64s()
}

// Score sets the ARI, NMI and subgroup identification accuracy of the discovered groups against a
// reference labelling of the same rows (true groups or fine labels), globally over (class, cluster)
// ids and per class (size-weighted mean; each class's own ARI and NMI go to Classes).
func (s *Subgroups) Score(truth []int64) error {
	sc, err := s.Against(truth, s.Reference)
	if err != nil {
		return err
	}
	s.ClusterScore = *sc
	for ci := range s.Classes {
		cc := &s.Classes[ci]
		cc.ARI, cc.NMI = sc.perClass[ci][0], sc.perClass[ci][1]
	}
	return nil
}

// Against scores the discovered groups against a reference labelling (named reference in the
// result) without changing s.
func (s *Subgroups) Against(truth []int64, reference string) (*ClusterScore, error) {
	if s == nil {
		return nil, fmt.Errorf("eval: score subgroups: nil result")
	}
	if len(truth) != len(s.Assign) {
		return nil, fmt.Errorf("eval: score subgroups: %d reference labels for %d clustered rows", len(truth), len(s.Assign))
	}
	sc := &ClusterScore{Reference: reference}
	ari, err := AdjustedRandIndex(truth, s.Assign)
	if err != nil {
		return nil, err
	}
	nmi, _ := NormalizedMutualInfo(truth, s.Assign)
	acc := majorityMappingAccuracy(truth, s.Assign)
	sc.ARI, sc.NMI, sc.SubgroupAcc = &ari, &nmi, &acc
	rows := map[int64][]int{}
	for i := range s.Assign {
		c := s.Pairs[s.Assign[i]][0]
		rows[c] = append(rows[c], i)
	}
	var wa, wn, tot float64
	for _, cc := range s.Classes {
		idx := rows[cc.Class]
		t, p := make([]int64, len(idx)), make([]int64, len(idx))
		for j, i := range idx {
			t[j], p[j] = truth[i], s.Cluster[i]
		}
		a, _ := AdjustedRandIndex(t, p)
		m, _ := NormalizedMutualInfo(t, p)
		sc.perClass = append(sc.perClass, [2]*float64{&a, &m})
		wa += a * float64(len(idx))
		wn += m * float64(len(idx))
		tot += float64(len(idx))
	}
	wa, wn = wa/tot, wn/tot
	sc.PerClassARI, sc.PerClassNMI = &wa, &wn
	return sc, nil
}

// majorityMappingAccuracy maps each cluster to its most frequent reference label (ties: the
// smallest label) and returns the share of rows whose cluster maps to their own label.
func majorityMappingAccuracy(truth, clusters []int64) float64 {
	counts := map[int64]map[int64]int{}
	for i, c := range clusters {
		if counts[c] == nil {
			counts[c] = map[int64]int{}
		}
		counts[c][truth[i]]++
	}
	correct := 0
	for _, m := range counts {
		best := 0
		for _, n := range m {
			best = max(best, n)
		}
		correct += best
	}
	if len(truth) == 0 {
		return 0
	}
	return float64(correct) / float64(len(truth))
}
