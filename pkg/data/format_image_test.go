package data

import (
	"image"
	"image/color"
	"path/filepath"
	"testing"
)

func TestResizeBilinear(t *testing.T) {
	// A constant plane stays constant at any size.
	src := []uint8{9, 9, 9, 9, 9, 9}
	dst := make([]uint8, 5*4)
	resizeBilinear(src, 3, 2, dst, 5, 4)
	for _, v := range dst {
		if v != 9 {
			t.Fatalf("constant plane resized to %v", dst)
		}
	}
	// Halving a 4x1 row averages neighbouring pairs (half-pixel centres fall between them).
	row := make([]uint8, 2)
	resizeBilinear([]uint8{0, 100, 200, 250}, 4, 1, row, 2, 1)
	if row[0] != 50 || row[1] != 225 {
		t.Errorf("4->2 = %v, want [50 225]", row)
	}
}

func TestDecodeImageChannels(t *testing.T) {
	red := pngBytes(t, solidImage(8, 8, color.RGBA{200, 10, 20, 255}))
	rgb := make([]uint8, 3*4*4)
	if err := DecodeImage(red, "red.png", ImageOptions{H: 4, W: 4, C: 3}, rgb); err != nil {
		t.Fatal(err)
	}
	if rgb[0] != 200 || rgb[16] != 10 || rgb[32] != 20 {
		t.Errorf("planes start %d %d %d", rgb[0], rgb[16], rgb[32])
	}
	gray := make([]uint8, 4*4)
	if err := DecodeImage(red, "red.png", ImageOptions{H: 4, W: 4, C: 1}, gray); err != nil {
		t.Fatal(err)
	}
	if want := uint8((299*200 + 587*10 + 114*20 + 500) / 1000); gray[5] != want {
		t.Errorf("luma %d, want %d", gray[5], want)
	}
	// A grayscale PNG is replicated into three channels.
	g := image.NewGray(image.Rect(0, 0, 2, 2))
	for i := range g.Pix {
		g.Pix[i] = 77
	}
	out := make([]uint8, 3*2*2)
	if err := DecodeImage(pngBytes(t, g), "g.png", ImageOptions{H: 2, W: 2, C: 3}, out); err != nil {
		t.Fatal(err)
	}
	for _, v := range out {
		if v != 77 {
			t.Fatalf("gray->RGB %v", out)
		}
	}
	// JPEG colours survive within JPEG's error.
	jp := jpegBytes(t, solidImage(16, 16, color.RGBA{30, 140, 220, 255}))
	if err := DecodeImage(jp, "c.jpg", ImageOptions{H: 4, W: 4, C: 3}, rgb); err != nil {
		t.Fatal(err)
	}
	for c, want := range []int{30, 140, 220} {
		if d := int(rgb[c*16]) - want; d < -4 || d > 4 {
			t.Errorf("JPEG channel %d = %d, want about %d", c, rgb[c*16], want)
		}
	}
}

func TestDecodeImageRefusesHugeHeader(t *testing.T) {
	b := pngBytes(t, solidImage(64, 64, color.RGBA{1, 2, 3, 255}))
	err := DecodeImage(b, "big.png", ImageOptions{H: 2, W: 2, C: 1, MaxSourcePixels: 1000}, make([]uint8, 4))
	wantErr(t, err, "big.png", "64x64", "limit")
}

func TestLoadImageFolder(t *testing.T) {
	root := t.TempDir()
	// Classes "cat" and "ant": sorted, ant is 0. Mixed sizes, formats and colour models.
	writeFile(t, filepath.Join(root, "train", "cat", "b.png"), pngBytes(t, solidImage(10, 6, color.RGBA{0, 0, 250, 255})))
	writeFile(t, filepath.Join(root, "train", "cat", "a.jpeg"), jpegBytes(t, solidImage(8, 8, color.RGBA{250, 0, 0, 255})))
	g := image.NewGray(image.Rect(0, 0, 3, 3))
	writeFile(t, filepath.Join(root, "train", "ant", "z.PNG"), pngBytes(t, g))
	writeFile(t, filepath.Join(root, "train", "ant", "notes.txt"), []byte("not an image"))
	ds, err := LoadImageFolder(root, "train", FolderOptions{ImageOptions: ImageOptions{H: 4, W: 4, C: 3, Workers: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if ds.N != 3 || ds.FineNames[0] != "ant" || ds.FineNames[1] != "cat" {
		t.Fatalf("N=%d classes=%v", ds.N, ds.FineNames)
	}
	wantLabels := []int64{0, 1, 1}
	for i, w := range wantLabels {
		if ds.Fine[i] != w || ds.Coarse[i] != w {
			t.Errorf("sample %d label %d, want %d", i, ds.Fine[i], w)
		}
	}
	if filepath.Base(ds.Source[1]) != "a.jpeg" || ds.Image(1)[0] < 240 || ds.Image(2)[2*16] < 240 {
		t.Errorf("order or pixels wrong: %v, red=%d blue=%d", ds.Source, ds.Image(1)[0], ds.Image(2)[2*16])
	}
	limited, err := LoadImageFolder(root, "train", FolderOptions{ImageOptions: ImageOptions{H: 4, W: 4, C: 1}, PerClassLimit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if limited.N != 2 || filepath.Base(limited.Source[1]) != "a.jpeg" {
		t.Errorf("limit 1: %v", limited.Source)
	}
}

func TestLoadImageFolderErrors(t *testing.T) {
	good := pngBytes(t, solidImage(4, 4, color.RGBA{1, 2, 3, 255}))
	noise := solidImage(64, 64, color.RGBA{})
	for i := range noise.Pix {
		noise.Pix[i] = uint8(i * 37)
	}
	jp := jpegBytes(t, noise)
	cases := []struct {
		name string
		file string
		data []byte
		want []string
	}{
		{"truncated png", "broken.png", good[:len(good)-20], []string{"broken.png", "corrupt or truncated png"}},
		{"truncated jpeg", "broken.jpg", jp[:len(jp)/2], []string{"broken.jpg", "corrupt or truncated jpeg"}},
		{"not an image", "text.jpg", []byte("hello, world"), []string{"text.jpg", "not a readable JPEG or PNG"}},
		{"empty file", "empty.png", nil, []string{"empty.png", "not a readable"}},
		{"header cut", "cut.jpg", jp[:40], []string{"cut.jpg", "truncated"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			writeFile(t, filepath.Join(root, "test", "a", "0.png"), good)
			writeFile(t, filepath.Join(root, "test", "b", tc.file), tc.data)
			_, err := LoadImageFolder(root, "test", FolderOptions{ImageOptions: ImageOptions{H: 4, W: 4, C: 3}})
			wantErr(t, err, tc.want...)
		})
	}
	t.Run("no classes", func(t *testing.T) {
		root := t.TempDir()
		writeFile(t, filepath.Join(root, "test", "loose.png"), good)
		_, err := LoadImageFolder(root, "test", FolderOptions{ImageOptions: ImageOptions{H: 4, W: 4, C: 3}})
		wantErr(t, err, "no class subfolders")
	})
	t.Run("bad options", func(t *testing.T) {
		_, err := LoadImageFolder(t.TempDir(), "test", FolderOptions{ImageOptions: ImageOptions{H: 4, W: 4, C: 2}})
		wantErr(t, err, "2 channels")
	})
}
