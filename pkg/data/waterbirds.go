package data

import (
	"fmt"
	"path/filepath"
)

// WaterbirdsClassNames are Waterbirds' labels y: 0 landbird, 1 waterbird. Its backgrounds (the
// place column) are 0 land, 1 water.
var WaterbirdsClassNames = []string{"landbird", "waterbird"}

// LoadWaterbirds reads one split ("train", "val" or "test") of Waterbirds as released by Sagawa et
// al. (2020): <dir>/metadata.csv with the columns img_id,img_filename,y,split,place,place_filename,
// split 0/1/2 = train/val/test, and the images at <dir>/<img_filename>. Coarse = y; group =
// 2*y + place (0 landbird on land, 1 landbird on water, 2 waterbird on land, 3 waterbird on water).
func LoadWaterbirds(dir, split string, o ImageOptions) (*Dataset, error) {
	csvPath := filepath.Join(dir, "metadata.csv")
	d, err := LoadMetadataCSV(csvPath, dir, split, CSVOptions{
		ImageOptions: o,
		Columns:      CSVColumns{Path: "img_filename", Label: "y", Group: "place", Split: "split"},
		SplitValues:  map[string]string{"0": "train", "1": "val", "2": "test"},
		LabelNames:   WaterbirdsClassNames,
	})
	if err != nil {
		return nil, fmt.Errorf("waterbirds: %w", err)
	}
	for i, place := range d.Group {
		if place < 0 || place > 1 {
			return nil, fmt.Errorf("waterbirds: %s: place %d: want 0 (land) or 1 (water) (is the place column there?)", d.SourceOf(i), place)
		}
		d.Group[i] = 2*d.Coarse[i] + place
	}
	d.Name = "waterbirds-" + split
	return d, nil
}
