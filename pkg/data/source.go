package data

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Source names a dataset and says how to read it; it is the `data:` section of a run's config.
type Source struct {
	Name string `yaml:"name"` // see SourceNames
	// Dir holds the dataset's files; empty means <data root>/<DefaultDir(name)>.
	Dir string `yaml:"dir"`
	// LabelMap is a fine-to-coarse label-map file (see ParseLabelMap); empty uses the dataset's
	// built-in hierarchy, and "none" trains on the fine labels.
	LabelMap string `yaml:"label_map"`
	// CSV is the metadata file of a csv dataset; Columns names its columns (default
	// path,label[,fine_label][,group][,split]) and says how to read their cells.
	CSV     string     `yaml:"csv"`
	Columns CSVColumns `yaml:"columns"`
	// TestFraction draws a seeded, stratified test split from a csv file that has no split column
	// (ISIC's metadata has none); 0 requires a split column.
	TestFraction float64 `yaml:"test_fraction"`
	// Target and Spurious are CelebA's attributes: the label and the one that makes the groups
	// (defaults Blond_Hair and Male).
	Target   string `yaml:"target"`
	Spurious string `yaml:"spurious"`
	// ImageSize and Channels fix the image shape of folder and csv datasets (others are native).
	ImageSize int `yaml:"image_size"`
	Channels  int `yaml:"channels"`
	// PerClassLimit keeps k training images per fine class (seeded), TestPerClassLimit likewise for
	// the test split; 0 keeps all. For quick runs and CI.
	PerClassLimit     int `yaml:"per_class_limit"`
	TestPerClassLimit int `yaml:"test_per_class_limit"`
	// SubclassSizes resamples the training split so that the fine classes inside each coarse class
	// get these sizes, assigned to the subclasses by a seeded draw: the paper's imbalanced CIFAR-100
	// uses [500, 250, 100, 50, 50] (CIFAR100ImbalancedSizes). Empty keeps every image.
	SubclassSizes []int `yaml:"subclass_sizes"`
	// Agreement is the share of training images whose spurious attribute agrees with the label in the
	// synthetic robustness sets (colored-mnist, waterbirds-like); their test split uses 0.5.
	Agreement float64 `yaml:"agreement"`
	// Seed draws the data: the per-class subsets, the imbalanced resampling, the synthetic sets'
	// attributes and (with train.val_fraction) the validation split. `train --seed` sets it too.
	Seed uint64 `yaml:"seed"`
}

// SourceNames lists the dataset names Source understands.
var SourceNames = []string{"mnist", "fashion-mnist", "cifar10", "cifar100", "cifar10-jpg", "folder", "csv",
	"colored-mnist", "waterbirds-like", "waterbirds", "celeba", "tinyimagenet"}

// ErrNoValSplit says that a dataset has no official validation split; the trainer then holds out a
// seeded share of the training split (Load(root, "val") returns it wrapped).
var ErrNoValSplit = errors.New("the dataset has no official validation split")

// officialVal reports whether a dataset publishes a validation split (a csv file may: its split
// column decides).
func officialVal(name string) bool {
	return name == "waterbirds" || name == "celeba" || name == "csv"
}

// DefaultDir is the folder under the data root where a named dataset lives by default.
func DefaultDir(name string) string {
	switch name {
	case "cifar10":
		return "cifar-10-batches-bin"
	case "cifar100":
		return "cifar-100-binary"
	case "colored-mnist", "waterbirds-like":
		return "mnist"
	case "waterbirds":
		return "waterbird_complete95_forest2water2" // the folder of the official archive
	case "tinyimagenet":
		return "tiny-imagenet-200"
	}
	return name
}

// DataRoot is where datasets live unless a run says otherwise: $SPREADTRAIN_DATA, else ./data.
func DataRoot() string {
	if d := os.Getenv("SPREADTRAIN_DATA"); d != "" {
		return d
	}
	return "data"
}

func (s Source) dir(root string) string {
	if s.Dir != "" {
		return s.Dir
	}
	if s.Name == "fashion-mnist" {
		local := filepath.Join(root, "fashion-mnist")
		if _, err := os.Stat(local); err != nil {
			return DefaultFashionMNISTDir
		}
		return local
	}
	return filepath.Join(root, DefaultDir(s.Name))
}

// Validate checks the fields that do not need the files.
func (s Source) Validate() error {
	known := false
	for _, n := range SourceNames {
		known = known || n == s.Name
	}
	if !known {
		return fmt.Errorf("data.name %q: want one of %s", s.Name, strings.Join(SourceNames, ", "))
	}
	if sized := s.Name == "folder" || s.Name == "csv" || s.Name == "waterbirds" || s.Name == "celeba"; sized && (s.ImageSize < 1 || (s.Channels != 1 && s.Channels != 3)) {
		return fmt.Errorf("data: a %s dataset needs data.image_size > 0 and data.channels 1 or 3", s.Name)
	}
	if s.Name == "csv" && s.CSV == "" {
		return fmt.Errorf("data.csv: a csv dataset needs the metadata file")
	}
	if s.TestFraction < 0 || s.TestFraction >= 1 {
		return fmt.Errorf("data.test_fraction %v: must be in [0, 1)", s.TestFraction)
	}
	if s.PerClassLimit < 0 || s.TestPerClassLimit < 0 {
		return fmt.Errorf("data.per_class_limit must be >= 0")
	}
	for _, n := range s.SubclassSizes {
		if n < 1 {
			return fmt.Errorf("data.subclass_sizes %v: every size must be >= 1", s.SubclassSizes)
		}
	}
	if s.Agreement < 0 || s.Agreement > 1 {
		return fmt.Errorf("data.agreement %v: must be in [0, 1]", s.Agreement)
	}
	return nil
}

// Load reads one split ("train", "val" or "test") with its label hierarchy applied. "val" is the
// dataset's official validation split; where there is none, the error wraps ErrNoValSplit.
func (s Source) Load(root, split string) (*Dataset, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if split != "train" && split != "val" && split != "test" {
		return nil, fmt.Errorf("split %q: want train, val or test", split)
	}
	if split == "val" && !officialVal(s.Name) {
		return nil, fmt.Errorf("data %s: %w", s.Name, ErrNoValSplit)
	}
	dir := s.dir(root)
	var d *Dataset
	var err error
	switch s.Name {
	case "mnist":
		d, err = LoadMNIST(dir, split)
	case "fashion-mnist":
		d, err = LoadFashionMNIST(dir, split)
	case "cifar10":
		d, err = LoadCIFAR10(dir, split)
	case "cifar100":
		d, err = LoadCIFAR100(dir, split) // carries its 20 superclasses as coarse labels
	case "cifar10-jpg":
		d, err = loadCIFAR10JPG(dir, split, s.limit(split))
	case "folder":
		d, err = LoadImageFolder(dir, split, FolderOptions{ImageOptions: s.imageOptions()})
	case "csv":
		d, err = LoadMetadataCSV(s.CSV, dir, split, CSVOptions{ImageOptions: s.imageOptions(), Columns: s.Columns,
			TestFraction: s.TestFraction, Seed: s.Seed ^ DefaultSplitSeed})
		if err == nil && split == "val" && d.N == 0 {
			return nil, fmt.Errorf("%s: no row is in the val split: %w", s.CSV, ErrNoValSplit)
		}
	case "waterbirds":
		d, err = LoadWaterbirds(dir, split, s.imageOptions())
	case "celeba":
		target, spurious := s.Target, s.Spurious
		if target == "" {
			target = DefaultCelebATarget
		}
		if spurious == "" {
			spurious = DefaultCelebASpurious
		}
		d, err = LoadCelebA(dir, split, target, spurious, s.imageOptions())
	case "tinyimagenet":
		o := s.imageOptions()
		if o.H == 0 {
			o.H, o.W = 64, 64 // native size
		}
		if o.C == 0 {
			o.C = 3
		}
		d, err = LoadTinyImageNet(dir, split, o)
	case "colored-mnist", "waterbirds-like":
		return s.loadSynthetic(root, dir, split)
	}
	if err != nil {
		return nil, err
	}
	if err := s.applyLabels(d); err != nil {
		return nil, err
	}
	if k := s.limit(split); k > 0 && s.Name != "cifar10-jpg" {
		d = LimitPerClass(d, k, s.Seed)
	}
	if len(s.SubclassSizes) > 0 && split == "train" {
		if d, _, err = ImbalanceSubclasses(d, s.SubclassSizes, s.Seed); err != nil {
			return nil, fmt.Errorf("data.subclass_sizes: %w", err)
		}
	}
	return d, nil
}

func (s Source) limit(split string) int {
	if split != "train" {
		return s.TestPerClassLimit
	}
	return s.PerClassLimit
}

func (s Source) imageOptions() ImageOptions {
	return ImageOptions{H: s.ImageSize, W: s.ImageSize, C: s.Channels}
}

// applyLabels sets the coarse labels from the label-map file, or the built-in hierarchy.
func (s Source) applyLabels(d *Dataset) error {
	switch {
	case s.LabelMap == "none":
		d.Coarse = append([]int64(nil), d.Fine...)
		d.CoarseNames = append([]string(nil), d.FineNames...)
		return nil
	case s.LabelMap != "":
		m, err := LoadLabelMap(s.LabelMap, d.FineNames)
		if err != nil {
			return err
		}
		return d.ApplyLabelMap(m)
	}
	builtin := map[string]string{"mnist": "mnist", "fashion-mnist": "fashion-mnist", "cifar10": "cifar10", "cifar10-jpg": "cifar10"}
	name, ok := builtin[s.Name]
	if !ok {
		return nil // the others bring their own coarse labels (tinyimagenet: the fine ones)
	}
	m, err := BuiltinLabelMap(name)
	if err != nil {
		return err
	}
	return d.ApplyLabelMap(m)
}

// loadCIFAR10JPG reads the JPEG release from its .tar.gz archives or an extracted folder.
func loadCIFAR10JPG(dir, split string, limit int) (*Dataset, error) {
	opts := FolderOptions{ImageOptions: ImageOptions{H: 32, W: 32, C: 3}, Classes: CIFAR10ClassNames, PerClassLimit: limit}
	archive := filepath.Join(dir, "cifar10-jpg-"+split+".tar.gz")
	if _, err := os.Stat(archive); err == nil {
		return LoadImageTarGz(archive, split, opts)
	}
	if _, err := os.Stat(filepath.Join(dir, split)); err == nil {
		return LoadImageFolder(dir, split, opts)
	}
	return nil, fmt.Errorf("cifar10-jpg: neither %s nor %s exists", archive, filepath.Join(dir, split))
}

// loadSynthetic builds the spurious-correlation sets from MNIST (and CIFAR-10 backgrounds).
func (s Source) loadSynthetic(root, mnistDir, split string) (*Dataset, error) {
	digits, err := LoadMNIST(mnistDir, split)
	if err != nil {
		return nil, err
	}
	if k := s.limit(split); k > 0 {
		digits = LimitPerClass(digits, k, s.Seed)
	}
	agreement := s.Agreement
	if agreement == 0 {
		agreement = 0.95
	}
	if split == "test" {
		agreement = 0.5
	}
	seed := s.Seed + map[string]uint64{"train": 0, "test": 1}[split]
	if s.Name == "colored-mnist" {
		return ColoredMNIST(digits, agreement, seed)
	}
	bgDir := filepath.Join(root, "cifar10-jpg")
	bg, err := loadCIFAR10JPG(bgDir, split, 0)
	if err != nil {
		return nil, fmt.Errorf("waterbirds-like backgrounds: %w", err)
	}
	if err := bg.ApplyLabelMap(CIFAR10VehicleAnimalMap()); err != nil {
		return nil, err
	}
	return WaterbirdsLike(digits, bg, agreement, seed)
}
