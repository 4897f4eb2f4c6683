package train

import (
	"reflect"
	"slices"
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// Terms.Named names each field by lossTerms: a field added to Terms without its name in lossTerms
// (or the other way round) fails here, not as a mislabelled curve.
func TestNamedFollowsLossTerms(t *testing.T) {
	if n := reflect.TypeOf(Terms{}).NumField(); n != len(lossTerms) {
		t.Fatalf("Terms has %d fields, lossTerms %d names", n, len(lossTerms))
	}
	torch.WithScope(func() {
		var terms Terms
		v := reflect.ValueOf(&terms).Elem()
		for i := 0; i < v.NumField(); i++ {
			v.Field(i).Set(reflect.ValueOf(torch.Full([]int64{}, float64(i), torch.Float32, torch.CPU)))
		}
		named := terms.Named()
		var names []string
		for i, n := range named {
			names = append(names, n.Name)
			if got := n.Tensor.Item(); got != float64(i) {
				t.Errorf("%s holds field %v's tensor, want field %d's", n.Name, got, i)
			}
		}
		if !slices.Equal(names, lossTerms) {
			t.Fatalf("Named gives %v, want %v", names, lossTerms)
		}
		terms.SimCLR, terms.AE = nil, nil
		names = names[:0]
		for _, n := range terms.Named() {
			names = append(names, n.Name)
		}
		if want := []string{"loss", "supcon", "cnce", "ce"}; !slices.Equal(names, want) {
			t.Fatalf("with SimCLR and AE unset Named gives %v, want %v", names, want)
		}
	})
}
