package train

import (
	"fmt"
	"math"
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/supcon"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// The objective of every method against its terms computed by hand, in float64 loops, from the
// same forward outputs: which features feed which term, the weights alpha, beta, gamma, the
// autoencoder's target (the augmented view itself), the coarse label of every view, and the
// data-parallel case where this rank's anchors sit at an offset inside the gathered global batch.

// refContrast is the canonical SupCon (denominator: all) and cNCE of METHOD.md over z [M][D] with
// sample ids and labels, for the anchors in [lo, hi); anchors without a positive are left out.
func refContrast(z [][]float64, sample, label []int, lo, hi int, tau float64) (sc, cnce float64) {
	norm := make([][]float64, len(z))
	for i, v := range z {
		var s float64
		for _, x := range v {
			s += x * x
		}
		s = math.Max(math.Sqrt(s), 1e-12)
		norm[i] = make([]float64, len(v))
		for j, x := range v {
			norm[i][j] = x / s
		}
	}
	sim := func(a, b int) float64 {
		var s float64
		for k := range norm[a] {
			s += norm[a][k] * norm[b][k]
		}
		return s / tau
	}
	lse := func(a int, in func(b int) bool) float64 {
		m := math.Inf(-1)
		for b := range z {
			if b != a && in(b) {
				m = math.Max(m, sim(a, b))
			}
		}
		var s float64
		for b := range z {
			if b != a && in(b) {
				s += math.Exp(sim(a, b) - m)
			}
		}
		return m + math.Log(s)
	}
	var nSC, nNCE int
	for a := lo; a < hi; a++ {
		all := lse(a, func(int) bool { return true })
		same := lse(a, func(b int) bool { return label[b] == label[a] })
		var sumP, sumQ float64
		var p, q int
		for b := range z {
			if b == a || label[b] != label[a] {
				continue
			}
			sumP += sim(a, b) - all
			p++
			if sample[b] == sample[a] {
				sumQ += sim(a, b) - same
				q++
			}
		}
		if p > 0 {
			sc += -sumP / float64(p)
			nSC++
		}
		if q > 0 {
			cnce += -sumQ / float64(q)
			nNCE++
		}
	}
	return sc / float64(max(nSC, 1)), cnce / float64(max(nNCE, 1))
}

// rows turns [B, V, D] (or [B*V, D] viewed as B samples of V views) into anchor rows ordered
// sample-major, with each row's sample id and label.
func rows(t *torch.Tensor, b, v int, labels []int64) (z [][]float64, sample, label []int) {
	flat := t.To(torch.Float64).Reshape(int64(b*v), -1)
	d := int(flat.Size(1))
	vals := flat.Float64s()
	for i := 0; i < b*v; i++ {
		z = append(z, vals[i*d:(i+1)*d])
		sample = append(sample, i/v)
		label = append(label, int(labels[i/v]))
	}
	return z, sample, label
}

func refMSE(a, b *torch.Tensor) float64 {
	x, y := a.To(torch.Float64).Float64s(), b.To(torch.Float64).Float64s()
	var s float64
	for i := range x {
		s += (x[i] - y[i]) * (x[i] - y[i])
	}
	return s / float64(len(x))
}

// refCE is the mean cross-entropy of logits [N, K] against each view's coarse label.
func refCE(logits *torch.Tensor, label []int) float64 {
	k := int(logits.Size(1))
	l := logits.To(torch.Float64).Float64s()
	var s float64
	for i := range label {
		row := l[i*k : (i+1)*k]
		m := math.Inf(-1)
		for _, x := range row {
			m = math.Max(m, x)
		}
		var e float64
		for _, x := range row {
			e += math.Exp(x - m)
		}
		s += m + math.Log(e) - row[label[i]]
	}
	return s / float64(len(label))
}

func objectiveFixture(t *testing.T, method string, alpha, beta, gamma float64) (*Model, MethodConfig, stepInput, []int64) {
	t.Helper()
	cfg := Default()
	cfg.Model.Width = 0.0625
	cfg.Decoder.Width = 0.0625
	cfg.Method = MethodConfig{Name: method, Alpha: alpha, Beta: beta, Gamma: gamma, Temperature: 0.5, Denominator: "all", Views: 2}
	cfg = cfg.Normalized()
	torch.ManualSeed(7)
	m, err := NewModel(cfg, Shape{C: 1, H: 32, W: 32, CoarseClasses: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Free)
	labels := []int64{0, 1, 0, 1, 1, 0}
	views := torch.Randn([]int64{6, 2, 1, 32, 32}, torch.Float32, torch.CPU)
	torch.Persist(views)
	coarse := torch.FromSlice(labels, 6)
	torch.Persist(coarse)
	return m, cfg.Method, stepInput{views: views, coarse: coarse}, labels
}

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol*math.Max(1, math.Abs(want)) {
		t.Errorf("%s = %.8f, want %.8f (by hand)", what, got, want)
	}
}

func TestObjectiveMatchesTermsByHand(t *testing.T) {
	for _, tc := range []struct {
		method             string
		alpha, beta, gamma float64
	}{
		{"supcon", 0, 0, 0}, {"spread", 0.7, 0, 0}, {"thanos", 0.8, 0.3, 0}, {"thanos", 0.6, 0.5, 0.25},
		{"simclr", 0, 0, 0}, {"ce", 0, 0, 0}, {"thanos-2b", 0.8, 0.2, 0.5}, {"supcon-2b", 0, 0, 0},
	} {
		t.Run(fmt.Sprintf("%s_a%g_b%g_g%g", tc.method, tc.alpha, tc.beta, tc.gamma), func(t *testing.T) {
			m, meth, in, labels := objectiveFixture(t, tc.method, tc.alpha, tc.beta, tc.gamma)
			torch.WithScope(func() {
				got := objective(m, meth, FastPath{}, in)
				// the same forward passes, by hand (BatchNorm in training mode sees the same batch)
				flat := in.views.Reshape(12, 1, 32, 32)
				perView := make([]int, 12)
				for i := range perView {
					perView[i] = int(labels[i/2])
				}
				var want, sc, cnce, simclr, ae, ce float64
				hA := m.Encoder.Forward(flat)
				zA, sample, label := rows(hA, 6, 2, labels)
				switch meth.Name {
				case "ce":
					ce = refCE(m.Classifier.Forward(hA), perView)
					want = meth.Gamma * ce
				case "simclr": // labels ignored: every sample its own class
					simclr, _ = refContrast(zA, sample, sample, 0, 12, meth.Temperature)
					want = simclr
				case "thanos-2b", "supcon-2b":
					hB := m.EncoderB.Forward(flat)
					zB, _, _ := rows(hB, 6, 2, labels)
					sc, cnce = refContrast(zA, sample, label, 0, 12, meth.Temperature)
					want = meth.Alpha*sc + (1-meth.Alpha)*cnce
					if meth.Name == "supcon-2b" {
						scB, _ := refContrast(zB, sample, label, 0, 12, meth.Temperature)
						want += scB
						sc = (sc + scB) / 2
					} else {
						ae = refMSE(m.Decoder.Forward(hB, in.coarse.Unsqueeze(1).Expand(6, 2).Reshape(12)), flat)
						want += meth.Beta * ae
					}
					ce = refCE(m.Classifier.Forward(torch.Cat([]*torch.Tensor{hA, hB}, 1)), perView)
					want += meth.Gamma * ce
				default:
					sc, cnce = refContrast(zA, sample, label, 0, 12, meth.Temperature)
					want = meth.Alpha*sc + (1-meth.Alpha)*cnce
					if meth.Beta > 0 {
						ae = refMSE(m.Decoder.Forward(hA, in.coarse.Unsqueeze(1).Expand(6, 2).Reshape(12)), flat)
						want += meth.Beta * ae
					}
					if meth.Gamma > 0 {
						ce = refCE(m.Classifier.Forward(hA), perView)
						want += meth.Gamma * ce
					}
				}
				near(t, "total", got.Total.Item(), want, 1e-5)
				for _, term := range []struct {
					name string
					t    *torch.Tensor
					want float64
				}{{"supcon", got.SupCon, sc}, {"cnce", got.CNCE, cnce}, {"simclr", got.SimCLR, simclr}, {"ae", got.AE, ae}, {"ce", got.CE, ce}} {
					if term.t == nil {
						if term.want != 0 {
							t.Errorf("%s missing", term.name)
						}
						continue
					}
					if term.name == "cnce" && meth.Name == "supcon-2b" {
						continue // logged for backbone A, weight 0
					}
					near(t, term.name, term.t.Item(), term.want, 1e-5)
				}
			})
		})
	}
}

// Under data parallelism the objective contrasts this rank's anchors (rows start..start+b of the
// gathered batch) against every rank's samples; the other rank's rows here are fixed numbers.
func TestObjectiveDataParallelOffset(t *testing.T) {
	m, meth, in, labels := objectiveFixture(t, "spread", 0.6, 0, 0)
	torch.WithScope(func() {
		var other *torch.Tensor // the other rank's embeddings [4, 2, D]
		otherLabels := []int64{1, 1, 0, 0}
		var zLocal *torch.Tensor
		in.gather = func(z, y *torch.Tensor) (*torch.Tensor, *torch.Tensor, int64) {
			zLocal = z
			o := torch.Randn([]int64{4, 2, z.Size(2)}, torch.Float32, torch.CPU)
			other = o
			return torch.Cat([]*torch.Tensor{o, z}, 0), torch.Cat([]*torch.Tensor{torch.FromSlice(otherLabels, 4), y}, 0), 4
		}
		got := objective(m, meth, FastPath{}, in)
		all := append(append([]int64{}, otherLabels...), labels...)
		z, sample, label := rows(torch.Cat([]*torch.Tensor{other, zLocal}, 0), 10, 2, all)
		sc, cnce := refContrast(z, sample, label, 8, 20, meth.Temperature)
		near(t, "total (rank at offset 4)", got.Total.Item(), meth.Alpha*sc+(1-meth.Alpha)*cnce, 1e-5)
	})
}

// The compatibility mode's total is the reference code's L_spread of the same features.
func TestObjectiveCompat(t *testing.T) {
	m, meth, in, labels := objectiveFixture(t, "spread", 0.5, 0, 0)
	meth.Compat = true
	torch.WithScope(func() {
		got := objective(m, meth, FastPath{}, in)
		h := m.Encoder.Forward(in.views.Reshape(12, 1, 32, 32)).Reshape(6, 2, -1)
		want := supcon.Compat(supcon.Views{Z: h, Labels: torch.FromSlice(labels, 6)}, meth.Temperature, supcon.CompatOptions{}).Spread(meth.Alpha)
		near(t, "compat total", got.Total.Item(), want.Item(), 1e-6)
	})
}
