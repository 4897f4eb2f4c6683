package data

import (
	"strings"
	"testing"
)

func TestSourceLoadsCIFAR10JPGWithHierarchy(t *testing.T) {
	dir := cifar10JPGDir(t)
	d, err := Source{Name: "cifar10-jpg", Dir: dir, PerClassLimit: 5}.Load("", "train")
	if err != nil {
		t.Fatal(err)
	}
	if d.N != 50 || len(d.CoarseNames) != 2 || len(d.FineNames) != 10 {
		t.Fatalf("N=%d coarse %v fine %v", d.N, d.CoarseNames, d.FineNames)
	}
	counts := d.CoarseCounts()
	if counts[0] != 20 || counts[1] != 30 { // 4 vehicle classes, 6 animal classes
		t.Fatalf("coarse counts %v, want [20 30]", counts)
	}
	imb, err := Source{Name: "cifar10-jpg", Dir: dir, PerClassLimit: 10, SubclassSizes: []int{10, 5, 3, 2}, LabelMap: "", Seed: 1}.Load("", "train")
	if err == nil {
		t.Fatalf("4 sizes for classes of 4 and 6 subclasses accepted: %d images", imb.N)
	}
	one, err := Source{Name: "cifar10-jpg", Dir: dir, PerClassLimit: 10, SubclassSizes: []int{3}, LabelMap: "none", Seed: 1}.Load("", "train")
	if err != nil || one.N != 30 {
		t.Fatalf("subclass sizes [3] on 10 one-subclass classes: %v images, %v", one, err)
	}
	fine, err := Source{Name: "cifar10-jpg", Dir: dir, PerClassLimit: 2, LabelMap: "none"}.Load("", "train")
	if err != nil {
		t.Fatal(err)
	}
	if len(fine.CoarseNames) != 10 {
		t.Fatalf("label_map none: %d coarse classes", len(fine.CoarseNames))
	}
}

func TestSourceErrors(t *testing.T) {
	cases := []struct {
		s    Source
		want string
	}{
		{Source{Name: "imagenet"}, "data.name"},
		{Source{Name: "folder"}, "image_size"},
		{Source{Name: "csv", ImageSize: 32, Channels: 3}, "data.csv"},
		{Source{Name: "mnist", Agreement: 2}, "agreement"},
	}
	for _, c := range cases {
		if _, err := c.s.Load(t.TempDir(), "train"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want an error naming %s", c.s, err, c.want)
		}
	}
	if _, err := (Source{Name: "mnist"}).Load(t.TempDir(), "val"); err == nil {
		t.Error("split val accepted")
	}
	if _, err := (Source{Name: "mnist"}).Load(t.TempDir(), "train"); err == nil || !strings.Contains(err.Error(), "mnist") {
		t.Errorf("missing MNIST files: %v", err)
	}
}
