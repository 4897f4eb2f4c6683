package data

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// LabelMap maps fine classes to coarse classes: FineToCoarse[f] is the coarse index of fine class f.
type LabelMap struct {
	Name         string
	FineNames    []string // the fine classes the map is written for, in label order
	CoarseNames  []string
	FineToCoarse []int
}

// Validate checks that every fine class maps to a coarse class in range and every coarse class is used.
func (m *LabelMap) Validate() error {
	if len(m.FineToCoarse) != len(m.FineNames) {
		return fmt.Errorf("label map %s: %d entries for %d fine classes", m.Name, len(m.FineToCoarse), len(m.FineNames))
	}
	used := make([]bool, len(m.CoarseNames))
	for f, c := range m.FineToCoarse {
		if c < 0 || c >= len(m.CoarseNames) {
			return fmt.Errorf("label map %s: fine class %d (%s) maps to coarse %d, out of range [0,%d)", m.Name, f, m.FineNames[f], c, len(m.CoarseNames))
		}
		used[c] = true
	}
	for c, u := range used {
		if !u {
			return fmt.Errorf("label map %s: coarse class %d (%s) has no fine class", m.Name, c, m.CoarseNames[c])
		}
	}
	return nil
}

// ApplyLabelMap sets d.Coarse from d.Fine through m and d.CoarseNames to m's. Every sample needs a
// known fine label, and the dataset's fine classes must be the map's (same count; names are
// compared so a map for the wrong dataset is refused).
func (d *Dataset) ApplyLabelMap(m *LabelMap) error {
	if err := m.Validate(); err != nil {
		return err
	}
	if len(d.FineNames) != len(m.FineNames) {
		return fmt.Errorf("%s: label map %s is for %d fine classes, dataset has %d", d.Name, m.Name, len(m.FineNames), len(d.FineNames))
	}
	for i, n := range d.FineNames {
		if n != m.FineNames[i] {
			return fmt.Errorf("%s: label map %s: fine class %d is %q in the map but %q in the dataset", d.Name, m.Name, i, m.FineNames[i], n)
		}
	}
	coarse := make([]int64, d.N)
	for i, f := range d.Fine {
		if f < 0 || f >= int64(len(m.FineToCoarse)) {
			return fmt.Errorf("%s: %s: fine label %d cannot be mapped (unknown or out of range)", d.Name, d.SourceOf(i), f)
		}
		coarse[i] = int64(m.FineToCoarse[f])
	}
	d.Coarse = coarse
	d.CoarseNames = append([]string(nil), m.CoarseNames...)
	return nil
}

// CIFAR10VehicleAnimalMap is the paper's CIFAR-10 hierarchy: coarse 0 "vehicle" = {airplane,
// automobile, ship, truck}, coarse 1 "animal" = the other six. Vehicles come first because they
// hold airplane, class 0.
func CIFAR10VehicleAnimalMap() *LabelMap {
	return &LabelMap{
		Name:         "cifar10-vehicle-animal",
		FineNames:    append([]string(nil), CIFAR10ClassNames...),
		CoarseNames:  []string{"vehicle", "animal"},
		FineToCoarse: []int{0, 0, 1, 1, 1, 1, 1, 1, 0, 0},
	}
}

// MNISTDigitMap is the paper's MNIST hierarchy: digits 0-4 -> 0 "digit<5", 5-9 -> 1 "digit>=5".
func MNISTDigitMap() *LabelMap {
	return &LabelMap{
		Name:         "mnist-digit-lt5",
		FineNames:    append([]string(nil), MNISTClassNames...),
		CoarseNames:  []string{"digit<5", "digit>=5"},
		FineToCoarse: []int{0, 0, 0, 0, 0, 1, 1, 1, 1, 1},
	}
}

// FashionMNISTUpperBodyMap is this project's 2-way Fashion-MNIST hierarchy (the paper has none):
// coarse 0 "upper-body" = {T-shirt/top, Pullover, Dress, Coat, Shirt} (garments worn on the torso;
// visually similar silhouettes, so the fine task inside it is the hard one), coarse 1 "other" =
// {Trouser, Sandal, Sneaker, Bag, Ankle boot}. Both sides have five fine classes, so coarse classes are
// balanced and the coarse-to-fine probe is 5-way within each.
func FashionMNISTUpperBodyMap() *LabelMap {
	return &LabelMap{
		Name:         "fashion-mnist-upper-body",
		FineNames:    append([]string(nil), FashionMNISTClassNames...),
		CoarseNames:  []string{"upper-body", "other"},
		FineToCoarse: []int{0, 1, 0, 0, 0, 1, 0, 1, 1, 1},
	}
}

// CIFAR100ClassNames are CIFAR-100's 100 fine classes in label order (alphabetical, as in
// fine_label_names.txt).
var CIFAR100ClassNames = []string{
	"apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
	"bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
	"chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
	"dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
	"lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
	"mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
	"plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
	"rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
	"squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
	"train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
}

// CIFAR100SuperclassNames are CIFAR-100's 20 superclasses in label order (coarse_label_names.txt).
var CIFAR100SuperclassNames = []string{
	"aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
	"household_electrical_devices", "household_furniture", "insects", "large_carnivores",
	"large_man-made_outdoor_things", "large_natural_outdoor_scenes", "large_omnivores_and_herbivores",
	"medium_mammals", "non-insect_invertebrates", "people", "reptiles", "small_mammals", "trees",
	"vehicles_1", "vehicles_2",
}

// cifar100Superclasses lists each superclass's five classes, as published with the dataset
// (Krizhevsky 2009, the CIFAR-100 class table).
var cifar100Superclasses = [20][5]string{
	{"beaver", "dolphin", "otter", "seal", "whale"},
	{"aquarium_fish", "flatfish", "ray", "shark", "trout"},
	{"orchid", "poppy", "rose", "sunflower", "tulip"},
	{"bottle", "bowl", "can", "cup", "plate"},
	{"apple", "mushroom", "orange", "pear", "sweet_pepper"},
	{"clock", "keyboard", "lamp", "telephone", "television"},
	{"bed", "chair", "couch", "table", "wardrobe"},
	{"bee", "beetle", "butterfly", "caterpillar", "cockroach"},
	{"bear", "leopard", "lion", "tiger", "wolf"},
	{"bridge", "castle", "house", "road", "skyscraper"},
	{"cloud", "forest", "mountain", "plain", "sea"},
	{"camel", "cattle", "chimpanzee", "elephant", "kangaroo"},
	{"fox", "porcupine", "possum", "raccoon", "skunk"},
	{"crab", "lobster", "snail", "spider", "worm"},
	{"baby", "boy", "girl", "man", "woman"},
	{"crocodile", "dinosaur", "lizard", "snake", "turtle"},
	{"hamster", "mouse", "rabbit", "shrew", "squirrel"},
	{"maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"},
	{"bicycle", "bus", "motorcycle", "pickup_truck", "train"},
	{"lawn_mower", "rocket", "streetcar", "tank", "tractor"},
}

// CIFAR100SuperclassMap is CIFAR-100's standard fine -> 20 superclasses hierarchy. The binary release
// already carries the superclass byte; the map serves datasets read from image folders.
func CIFAR100SuperclassMap() *LabelMap {
	index := make(map[string]int, len(CIFAR100ClassNames))
	for i, n := range CIFAR100ClassNames {
		index[n] = i
	}
	f2c := make([]int, len(CIFAR100ClassNames))
	for c, members := range cifar100Superclasses {
		for _, n := range members {
			f2c[index[n]] = c
		}
	}
	return &LabelMap{
		Name:         "cifar100-superclasses",
		FineNames:    append([]string(nil), CIFAR100ClassNames...),
		CoarseNames:  append([]string(nil), CIFAR100SuperclassNames...),
		FineToCoarse: f2c,
	}
}

// BuiltinLabelMap returns a built-in map by name: "cifar10" (vehicle/animal), "cifar100"
// (superclasses), "mnist" (digit<5), "fashion-mnist" (upper-body/other).
func BuiltinLabelMap(name string) (*LabelMap, error) {
	switch name {
	case "cifar10", "cifar10-vehicle-animal":
		return CIFAR10VehicleAnimalMap(), nil
	case "cifar100", "cifar100-superclasses":
		return CIFAR100SuperclassMap(), nil
	case "mnist", "mnist-digit-lt5":
		return MNISTDigitMap(), nil
	case "fashion-mnist", "fashion-mnist-upper-body":
		return FashionMNISTUpperBodyMap(), nil
	}
	return nil, fmt.Errorf("no built-in label map %q (have cifar10, cifar100, mnist, fashion-mnist)", name)
}

// LoadLabelMap reads a label-map file for the given fine classes; see ParseLabelMap for the format.
func LoadLabelMap(path string, fineNames []string) (*LabelMap, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseLabelMap(f, path, fineNames)
}

// ParseLabelMap reads a label map in this format, one entry per line:
//
//	# comment lines and blank lines are ignored
//	airplane: vehicle
//	1: vehicle        # a fine class may be given by index instead of name
//	bird: animal
//
// The part before the first ':' is a fine class (its name in fineNames, or its decimal index); the
// part after is the coarse class name. Coarse classes are numbered in order of first appearance.
// Every fine class must be mapped exactly once. A trailing "# ..." comment is allowed (so '#'
// cannot be part of a name). name is used in error messages.
func ParseLabelMap(r io.Reader, name string, fineNames []string) (*LabelMap, error) {
	fineIndex := make(map[string]int, len(fineNames))
	for i, n := range fineNames {
		fineIndex[n] = i
	}
	m := &LabelMap{Name: name, FineNames: append([]string(nil), fineNames...), FineToCoarse: make([]int, len(fineNames))}
	for i := range m.FineToCoarse {
		m.FineToCoarse[i] = -1
	}
	coarseIndex := map[string]int{}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		fineField, coarseName, ok := strings.Cut(text, ":")
		fineField, coarseName = strings.TrimSpace(fineField), strings.TrimSpace(coarseName)
		if !ok || fineField == "" || coarseName == "" {
			return nil, fmt.Errorf("%s:%d: want \"fine: coarse\", got %q", name, line, sc.Text())
		}
		f, known := fineIndex[fineField]
		if !known {
			idx, err := strconv.Atoi(fineField)
			if err != nil || idx < 0 || idx >= len(fineNames) {
				return nil, fmt.Errorf("%s:%d: %q is neither a fine class name nor an index in [0,%d)", name, line, fineField, len(fineNames))
			}
			f = idx
		}
		if m.FineToCoarse[f] >= 0 {
			return nil, fmt.Errorf("%s:%d: fine class %d (%s) is mapped twice", name, line, f, fineNames[f])
		}
		c, seen := coarseIndex[coarseName]
		if !seen {
			c = len(m.CoarseNames)
			coarseIndex[coarseName] = c
			m.CoarseNames = append(m.CoarseNames, coarseName)
		}
		m.FineToCoarse[f] = c
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var missing []string
	for f, c := range m.FineToCoarse {
		if c < 0 {
			missing = append(missing, fineNames[f])
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: fine classes not mapped: %s", name, strings.Join(missing, ", "))
	}
	return m, m.Validate()
}

// WriteLabelMap writes m in the format ParseLabelMap reads, grouped by coarse class in coarse order so
// that reading it back numbers the coarse classes as m does.
func WriteLabelMap(w io.Writer, m *LabelMap) error {
	if _, err := fmt.Fprintf(w, "# label map %s: fine class: coarse class\n", m.Name); err != nil {
		return err
	}
	for c := range m.CoarseNames {
		for f, fc := range m.FineToCoarse {
			if fc != c {
				continue
			}
			if _, err := fmt.Fprintf(w, "%s: %s\n", m.FineNames[f], m.CoarseNames[c]); err != nil {
				return err
			}
		}
	}
	return nil
}
