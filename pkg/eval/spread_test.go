package eval

import (
	"math"
	"math/rand"
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

func TestSpreadHandComputed(t *testing.T) {
	// class 0: (1,0), (0,1); class 1: (1,0), (1,1)/sqrt2 (given unnormalised, scaled)
	x := torch.FromSlice([]float32{2, 0, 0, 3, 1, 0, 5, 5}, 4, 2)
	v1 := torch.FromSlice([]float32{1, 0, 1, 0}, 2, 2)
	v2 := torch.FromSlice([]float32{0, 1, 4, 0}, 2, 2)
	s, err := SpreadDiagnostics(SpreadInput{X: x, Labels: []int64{0, 0, 1, 1}, View1: v1, View2: v2}, SpreadConfig{})
	if err != nil {
		t.Fatal(err)
	}
	r := 1 / math.Sqrt2
	wantIntra := (0 + 0 + 2*r) / 4                      // ordered same-class pairs
	wantInter := 2 * (1 + r + 0 + r) / 8                // ordered different-class pairs
	wantAlign := (2.0 + 0) / 2                          // ||(1,0)-(0,1)||^2 = 2
	d2 := []float64{2, 2 - 2*r, 2, 2 - 2*r, 0, 2 - 2*r} // the 6 unordered pairs
	var u float64
	for _, d := range d2 {
		u += math.Exp(-2 * d)
	}
	wantUnif := math.Log(u / 6)
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"intra", s.IntraClassCosine, wantIntra}, {"inter", s.InterClassCosine, wantInter},
		{"alignment", *s.Alignment, wantAlign}, {"uniformity", s.Uniformity, wantUnif}} {
		if math.Abs(c.got-c.want) > 1e-9 {
			t.Errorf("%s: %.12f, want %.12f", c.name, c.got, c.want)
		}
	}
	// without views the alignment is omitted
	s2, _ := SpreadDiagnostics(SpreadInput{X: x, Labels: []int64{0, 0, 1, 1}}, SpreadConfig{})
	if s2.Alignment != nil {
		t.Error("alignment reported without views")
	}
}

// The O(N D) class-sum formula agrees with the O(N^2) definition, and blocked uniformity with the direct one.
func TestSpreadMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	n, d := 300, 5
	xs := make([]float64, n*d)
	y := make([]int64, n)
	for i := range y {
		y[i] = int64(rng.Intn(4))
		for j := 0; j < d; j++ {
			xs[i*d+j] = rng.NormFloat64() + float64(int(y[i])%d)
		}
	}
	z := make([][]float64, n)
	for i := range z {
		z[i] = xs[i*d : (i+1)*d]
		nrm := 0.0
		for _, v := range z[i] {
			nrm += v * v
		}
		for j := range z[i] {
			z[i][j] /= math.Sqrt(nrm)
		}
	}
	var same, diff, ns, nd, u float64
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			if i == j {
				continue
			}
			dot, dd := 0.0, 0.0
			for k := 0; k < d; k++ {
				dot += z[i][k] * z[j][k]
				dd += (z[i][k] - z[j][k]) * (z[i][k] - z[j][k])
			}
			if y[i] == y[j] {
				same += dot
				ns++
			} else {
				diff += dot
				nd++
			}
			u += math.Exp(-2 * dd)
		}
	}
	x := torch.FromSlice(xs, int64(n), int64(d))
	s, err := SpreadDiagnostics(SpreadInput{X: x, Labels: y}, SpreadConfig{UniformitySample: n})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(s.IntraClassCosine-same/ns) > 1e-9 || math.Abs(s.InterClassCosine-diff/nd) > 1e-9 {
		t.Errorf("intra %.10f vs %.10f, inter %.10f vs %.10f", s.IntraClassCosine, same/ns, s.InterClassCosine, diff/nd)
	}
	if want := math.Log(u / float64(n*(n-1))); math.Abs(s.Uniformity-want) > 1e-6 {
		t.Errorf("uniformity %.10f, want %.10f", s.Uniformity, want)
	}
}

func TestSpreadErrors(t *testing.T) {
	x := torch.FromSlice([]float32{1, 0, 0, 1, 1, 1}, 3, 2)
	if _, err := SpreadDiagnostics(SpreadInput{X: x, Labels: []int64{0, 1, 2}}, SpreadConfig{}); err == nil {
		t.Error("all-singleton classes accepted")
	}
	if _, err := SpreadDiagnostics(SpreadInput{X: x, Labels: []int64{0, 0, 0}}, SpreadConfig{}); err == nil {
		t.Error("a single class accepted for the inter-class cosine")
	}
	if _, err := SpreadDiagnostics(SpreadInput{X: x, Labels: []int64{0, 0}}, SpreadConfig{}); err == nil {
		t.Error("mismatched labels accepted")
	}
	if _, err := Alignment(x, x.Narrow(0, 0, 2), 2); err == nil {
		t.Error("views of different lengths accepted")
	}
}
