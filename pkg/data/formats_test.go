package data

import (
	"errors"
	"fmt"
	"image/color"
	"path/filepath"
	"strings"
	"testing"
)

// shade is a solid test image whose red channel encodes i, so a loaded sample can be traced back.
func shade(t *testing.T, i, w, h int) []byte {
	return jpegBytes(t, solidImage(w, h, color.RGBA{uint8(20 * i), 128, 64, 255}))
}

// near reports whether a decoded JPEG byte is within 3 of the value written.
func near(got uint8, want int) bool { return int(got)-want <= 3 && want-int(got) <= 3 }

// waterbirdsFixture writes metadata.csv as released (img_id,img_filename,y,split,place,place_filename)
// with one JPEG per row under its species folder.
func waterbirdsFixture(t *testing.T, rows [][3]int) string {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("img_id,img_filename,y,split,place,place_filename\n")
	for i, r := range rows { // r = y, split, place
		name := fmt.Sprintf("%03d.Species_%d/Species_%d_%04d.jpg", 1+r[0]*100, r[0], r[0], i)
		writeFile(t, filepath.Join(dir, filepath.FromSlash(name)), shade(t, i, 12, 10))
		fmt.Fprintf(&b, "%d,%s,%d,%d,%d,/o/ocean/%08d.jpg\n", i+1, name, r[0], r[1], r[2], i)
	}
	writeFile(t, filepath.Join(dir, "metadata.csv"), []byte(b.String()))
	return dir
}

func TestWaterbirdsOfficialLayout(t *testing.T) {
	dir := waterbirdsFixture(t, [][3]int{{1, 0, 1}, {0, 0, 0}, {0, 0, 1}, {1, 1, 0}, {0, 2, 0}, {1, 2, 1}})
	src := Source{Name: "waterbirds", Dir: dir, ImageSize: 8, Channels: 3}
	want := map[string]struct {
		first  int // fixture row of the first sample
		coarse []int64
		group  []int64
	}{
		"train": {0, []int64{1, 0, 0}, []int64{3, 0, 1}},
		"val":   {3, []int64{1}, []int64{2}},
		"test":  {4, []int64{0, 1}, []int64{0, 3}},
	}
	for split, w := range want {
		d, err := src.Load("", split)
		if err != nil {
			t.Fatal(split, err)
		}
		if fmt.Sprint(d.Coarse) != fmt.Sprint(w.coarse) || fmt.Sprint(d.Group) != fmt.Sprint(w.group) || d.CoarseNames[1] != "waterbird" {
			t.Errorf("%s: coarse %v groups %v names %v, want %v %v", split, d.Coarse, d.Group, d.CoarseNames, w.coarse, w.group)
		}
		if d.H != 8 || !near(d.Image(0)[0], 20*w.first) {
			t.Errorf("%s: first image %dx%d red %d, want row %d's %d", split, d.H, d.W, d.Image(0)[0], w.first, 20*w.first)
		}
	}
	bad := waterbirdsFixture(t, [][3]int{{1, 0, 1}, {0, 0, 2}})
	_, err := Source{Name: "waterbirds", Dir: bad, ImageSize: 8, Channels: 3}.Load("", "train")
	wantErr(t, err, filepath.Join(bad, "metadata.csv")+":3", "place 2")
	writeFile(t, filepath.Join(bad, "metadata.csv"), []byte("img_id,img_filename,y,split,place,place_filename\n1,a.jpg,bird,0,0,x.jpg\n"))
	_, err = LoadWaterbirds(bad, "train", ImageOptions{H: 8, W: 8, C: 3})
	wantErr(t, err, "metadata.csv:2", "y", `"bird"`)
}

// celebaAttributes are the 40 attributes of list_attr_celeba.txt, in the released order.
var celebaAttributes = strings.Fields(`5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs
Big_Lips Big_Nose Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee
Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face
Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair
Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young`)

// celebaFixture writes list_attr_celeba.txt (count line, names line, then "000001.jpg  1 -1 ..." with
// the release's space padding), list_eval_partition.txt and 178x218 JPEGs in img_align_celeba/.
// rows[i] = blond, male, partition.
func celebaFixture(t *testing.T, rows [][3]int) string {
	dir := t.TempDir()
	var attr, part strings.Builder
	fmt.Fprintf(&attr, "%d\n%s \n", len(rows), strings.Join(celebaAttributes, " "))
	for i, r := range rows {
		name := fmt.Sprintf("%06d.jpg", i+1)
		writeFile(t, filepath.Join(dir, "img_align_celeba", name), shade(t, i, 178, 218))
		vals := make([]string, len(celebaAttributes))
		for j, a := range celebaAttributes {
			v := -1
			if (a == "Blond_Hair" && r[0] == 1) || (a == "Male" && r[1] == 1) || (a == "Young" && i%2 == 0) {
				v = 1
			}
			vals[j] = fmt.Sprintf("%2d", v)
		}
		fmt.Fprintf(&attr, "%s %s\n", name, strings.Join(vals, " "))
		fmt.Fprintf(&part, "%s %d\n", name, r[2])
	}
	writeFile(t, filepath.Join(dir, "list_attr_celeba.txt"), []byte(attr.String()))
	writeFile(t, filepath.Join(dir, "list_eval_partition.txt"), []byte(part.String()))
	return dir
}

func TestCelebAOfficialLayout(t *testing.T) {
	dir := celebaFixture(t, [][3]int{{1, 0, 0}, {0, 1, 0}, {1, 1, 0}, {0, 0, 1}, {1, 1, 2}})
	src := Source{Name: "celeba", Dir: dir, ImageSize: 16, Channels: 3}
	train, err := src.Load("", "train")
	if err != nil {
		t.Fatal(err)
	}
	// group = 2*blond + male
	if fmt.Sprint(train.Coarse) != "[1 0 1]" || fmt.Sprint(train.Group) != "[2 1 3]" || train.CoarseNames[1] != "Blond_Hair" {
		t.Errorf("train coarse %v groups %v names %v", train.Coarse, train.Group, train.CoarseNames)
	}
	if !near(train.Image(1)[0], 20) {
		t.Errorf("second training image red %d, want 20", train.Image(1)[0])
	}
	val, err := src.Load("", "val")
	if err != nil || val.N != 1 || val.Group[0] != 0 {
		t.Errorf("val: %v %+v", err, val)
	}
	// another attribute pair from the config: Young as the spurious attribute
	src.Spurious = "Young"
	test, err := src.Load("", "test")
	if err != nil || test.N != 1 || test.Group[0] != 3 { // row 4 is blond and (i even) young
		t.Errorf("test with Young: %v %+v", err, test)
	}
	src.Target = "Blonde"
	_, err = src.Load("", "train")
	wantErr(t, err, "list_attr_celeba.txt:2", `"Blonde"`)

	bad := celebaFixture(t, [][3]int{{1, 0, 0}, {0, 1, 0}})
	writeFile(t, filepath.Join(bad, "list_attr_celeba.txt"), []byte("2\n"+strings.Join(celebaAttributes, " ")+"\n000001.jpg"+strings.Repeat(" -1", 40)+"\n000002.jpg"+strings.Repeat(" 0", 40)+"\n"))
	_, err = LoadCelebA(bad, "train", "Blond_Hair", "Male", ImageOptions{H: 8, W: 8, C: 3})
	wantErr(t, err, "list_attr_celeba.txt:4", "1 or -1")
	writeFile(t, filepath.Join(bad, "list_eval_partition.txt"), []byte("000001.jpg 0\n000002.jpg three\n"))
	_, err = LoadCelebA(bad, "train", "Blond_Hair", "Male", ImageOptions{H: 8, W: 8, C: 3})
	wantErr(t, err, "list_eval_partition.txt:2", "000002.jpg three")
}

// tinyFixture writes Tiny ImageNet's layout: wnids.txt (in the archive's unsorted order),
// train/<wnid>/images/<wnid>_<i>.JPEG with train/<wnid>/<wnid>_boxes.txt, val/images/val_<i>.JPEG and
// val/val_annotations.txt.
func tinyFixture(t *testing.T, valWnids []string) string {
	dir := t.TempDir()
	wnids := []string{"n02124075", "n01443537", "n01629819"}
	writeFile(t, filepath.Join(dir, "wnids.txt"), []byte(strings.Join(wnids, "\n")+"\n"))
	for k, w := range wnids {
		for i := 0; i < 2; i++ {
			writeFile(t, filepath.Join(dir, "train", w, "images", fmt.Sprintf("%s_%d.JPEG", w, i)), shade(t, 2*k+i, 64, 64))
		}
		writeFile(t, filepath.Join(dir, "train", w, w+"_boxes.txt"), []byte(w+"_0.JPEG\t0\t0\t63\t63\n"))
	}
	var ann strings.Builder
	for i, w := range valWnids {
		name := fmt.Sprintf("val_%d.JPEG", i)
		writeFile(t, filepath.Join(dir, "val", "images", name), shade(t, i, 64, 64))
		fmt.Fprintf(&ann, "%s\t%s\t0\t5\t62\t60\n", name, w)
	}
	writeFile(t, filepath.Join(dir, "val", "val_annotations.txt"), []byte(ann.String()))
	return dir
}

func TestTinyImageNetOfficialLayout(t *testing.T) {
	dir := tinyFixture(t, []string{"n01629819", "n02124075", "n01443537"})
	mapPath := writeFile(t, filepath.Join(t.TempDir(), "tiny-coarse.txt"), []byte("n01443537: fish\nn01629819: amphibian\nn02124075: mammal\n"))
	src := Source{Name: "tinyimagenet", Dir: dir, LabelMap: mapPath}
	train, err := src.Load("", "train")
	if err != nil {
		t.Fatal(err)
	}
	// classes in sorted wnid order: n01443537 (written second), n01629819, n02124075
	if fmt.Sprint(train.Fine) != "[0 0 1 1 2 2]" || fmt.Sprint(train.Coarse) != "[0 0 1 1 2 2]" ||
		train.FineNames[0] != "n01443537" || fmt.Sprint(train.CoarseNames) != "[fish amphibian mammal]" || train.H != 64 {
		t.Errorf("train fine %v coarse %v names %v %v", train.Fine, train.Coarse, train.FineNames, train.CoarseNames)
	}
	if !near(train.Image(0)[0], 40) { // n01443537 was the second class written: shades 2 and 3
		t.Errorf("first training image red %d, want 40", train.Image(0)[0])
	}
	test, err := src.Load("", "test")
	if err != nil || fmt.Sprint(test.Fine) != "[1 2 0]" {
		t.Fatalf("test (the official val set): %v %v", err, test)
	}
	if _, err := src.Load("", "val"); !errors.Is(err, ErrNoValSplit) {
		t.Errorf("val: %v, want ErrNoValSplit (Tiny ImageNet's labelled val serves as test)", err)
	}
	bad := tinyFixture(t, []string{"n01629819", "n09999999"})
	_, err = Source{Name: "tinyimagenet", Dir: bad}.Load("", "test")
	wantErr(t, err, "val_annotations.txt:2", "n09999999", "wnids.txt")
}

// ISIC's metadata has no split column and names its label with words: the generic csv loader reads
// it through data.columns and draws a seeded, stratified test split.
func TestCSVColumnsISIC(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("isic_id,age_approx,benign_malignant,diagnosis,patch\n")
	for i := 0; i < 20; i++ {
		writeFile(t, filepath.Join(dir, "images", fmt.Sprintf("ISIC_%07d.jpg", i)), shade(t, i%10, 30, 20))
		label := []string{"benign", "malignant"}[i%2]
		fmt.Fprintf(&b, "ISIC_%07d,%d,%s,nevus,%d\n", i, 30+i, label, (i/2)%2)
	}
	csvPath := writeFile(t, filepath.Join(dir, "metadata.csv"), []byte(b.String()))
	src := Source{Name: "csv", CSV: csvPath, Dir: filepath.Join(dir, "images"), ImageSize: 8, Channels: 3, TestFraction: 0.2,
		Columns: CSVColumns{Path: "isic_id", ImageExt: ".jpg", Label: "benign_malignant", LabelValues: []string{"benign", "malignant"}, Group: "patch"}}
	train, err := src.Load("", "train")
	if err != nil {
		t.Fatal(err)
	}
	test, err := src.Load("", "test")
	if err != nil {
		t.Fatal(err)
	}
	if train.N != 16 || test.N != 4 || fmt.Sprint(test.CoarseCounts()) != "[2 2]" || train.CoarseNames[1] != "malignant" {
		t.Errorf("train %d test %d (test classes %v), names %v: want 16/4, stratified", train.N, test.N, test.CoarseCounts(), train.CoarseNames)
	}
	seen := map[string]bool{}
	for _, s := range append(append([]string{}, train.Source...), test.Source...) {
		seen[s] = true
	}
	if len(seen) != 20 {
		t.Errorf("train and test overlap or miss rows: %d distinct of 20", len(seen))
	}
	if _, err := src.Load("", "val"); !errors.Is(err, ErrNoValSplit) {
		t.Errorf("val: %v, want ErrNoValSplit", err)
	}
	// group_with_label: (benign/malignant, patch) numbered label*2 + patch, row by row
	src.Columns.GroupWithLabel = true
	paired, err := src.Load("", "train")
	if err != nil {
		t.Fatal(err)
	}
	for j, where := range paired.Source {
		var line int
		if _, err := fmt.Sscanf(where[strings.LastIndex(where, ":")+1:], "%d", &line); err != nil {
			t.Fatal(err)
		}
		i := int64(line - 2)
		if want := (i%2)*2 + (i/2)%2; paired.Group[j] != want {
			t.Errorf("%s: group %d, want %d (label %d, patch %d)", where, paired.Group[j], want, i%2, (i/2)%2)
		}
	}
	writeFile(t, csvPath, []byte(b.String()+"ISIC_0000000,40,unknown,nevus,0\n"))
	_, err = src.Load("", "train")
	wantErr(t, err, "metadata.csv:22", "benign_malignant", `"unknown"`)
}
