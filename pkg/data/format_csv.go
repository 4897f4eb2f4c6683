package data

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// CSVColumns names the metadata columns (the `data.columns` section of a csv dataset's config) and
// says how to read their cells. Zero fields take DefaultCSVColumns' names. Path and Label must be in
// the header; Fine, Group and Split are used when present.
type CSVColumns struct {
	Path  string `yaml:"path"`       // image path, relative to the dataset root
	Label string `yaml:"label"`      // training (coarse) label: an integer >= 0, or one of LabelValues
	Fine  string `yaml:"fine_label"` // fine label, an integer >= 0; empty cell or -1 = unknown
	Group string `yaml:"group"`      // group label: an integer >= 0 or one of GroupValues; empty or -1 = unknown
	Split string `yaml:"split"`      // split name, mapped through CSVOptions.SplitValues
	// LabelValues, when set, are the label column's values in class order (ISIC's "benign",
	// "malignant"): a cell is its index here, and the values name the classes.
	LabelValues []string `yaml:"label_values"`
	// GroupValues likewise for the group column.
	GroupValues []string `yaml:"group_values"`
	// ImageExt is appended to a path cell that has no extension (ISIC's isic_id column holds
	// "ISIC_0000000" for ISIC_0000000.jpg).
	ImageExt string `yaml:"image_ext"`
	// GroupWithLabel makes a row's group the pair (label, group cell), numbered label*G + cell with G
	// the number of GroupValues (else the largest cell + 1): the (class, attribute) groups of the
	// robustness literature from an attribute column (ISIC's benign/malignant x patch).
	GroupWithLabel bool `yaml:"group_with_label"`
}

// DefaultCSVColumns are the column names used when CSVColumns leaves one empty. Waterbirds'
// metadata.csv, for one, needs {Path: "img_filename", Label: "y", Group: "place"} (its group is then
// the background; combine with the label for the usual 4 groups) and its split column is "split".
func DefaultCSVColumns() CSVColumns {
	return CSVColumns{Path: "path", Label: "label", Fine: "fine_label", Group: "group", Split: "split"}
}

// DefaultSplitValues maps split-column values to split names: the names themselves, and the 0/1/2 =
// train/val/test coding of Waterbirds and CelebA (list_eval_partition).
func DefaultSplitValues() map[string]string {
	return map[string]string{
		"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test",
		"0": "train", "1": "val", "2": "test",
	}
}

// CSVOptions configures LoadMetadataCSV.
type CSVOptions struct {
	ImageOptions
	Columns     CSVColumns
	SplitValues map[string]string // nil means DefaultSplitValues()
	// LabelNames names the coarse classes; nil means "0", "1", ... up to the largest label seen.
	LabelNames []string
	// FineNames names the fine classes; nil means "0", "1", ... up to the largest fine label seen.
	FineNames []string
	// TestFraction > 0 lets a file without a split column serve train and test: each label's rows
	// go to test with this probability, by a seeded stratified draw (Seed), the rest to train.
	TestFraction float64
	Seed         uint64
}

// MetadataRow is one parsed row of a metadata CSV.
type MetadataRow struct {
	Line  int // line in the file (the header is line 1)
	Path  string
	Label int64
	Fine  int64 // -1 when unknown
	Group int64 // -1 when unknown
	Split string
}

func (o CSVOptions) columns() CSVColumns {
	c, d := o.Columns, DefaultCSVColumns()
	for _, f := range []struct {
		dst *string
		def string
	}{{&c.Path, d.Path}, {&c.Label, d.Label}, {&c.Fine, d.Fine}, {&c.Group, d.Group}, {&c.Split, d.Split}} {
		if *f.dst == "" {
			*f.dst = f.def
		}
	}
	return c
}

// ParseMetadataCSV reads a metadata CSV (header row required) and returns the rows of the given
// split ("" = every row). name is used in error messages. Errors name the file and line: a missing
// required column, a non-integer or negative label, a path that is absolute or climbs out of the
// dataset root with "..", an unknown split value (on any row, not only the requested split's).
func ParseMetadataCSV(r io.Reader, name, split string, o CSVOptions) ([]MetadataRow, error) {
	cols := o.columns()
	splitValues := o.SplitValues
	if splitValues == nil {
		splitValues = DefaultSplitValues()
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 0 // every row as long as the header
	cr.ReuseRecord = false
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: empty file; want a header row with %q and %q columns", name, cols.Path, cols.Label)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: header: %w", name, err)
	}
	index := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")) // tolerate a UTF-8 byte-order mark
		if _, dup := index[h]; dup {
			return nil, fmt.Errorf("%s: header: column %q appears twice", name, h)
		}
		index[h] = i
	}
	col := func(c string, required bool) (int, error) {
		i, ok := index[c]
		if !ok && required {
			return -1, fmt.Errorf("%s: header has no %q column (columns: %s); set CSVOptions.Columns if it is named differently", name, c, strings.Join(header, ", "))
		}
		if !ok {
			return -1, nil
		}
		return i, nil
	}
	pathCol, err := col(cols.Path, true)
	if err != nil {
		return nil, err
	}
	labelCol, err := col(cols.Label, true)
	if err != nil {
		return nil, err
	}
	fineCol, _ := col(cols.Fine, false)
	groupCol, _ := col(cols.Group, false)
	splitCol, _ := col(cols.Split, false)
	if split != "" && splitCol < 0 && o.TestFraction <= 0 {
		return nil, fmt.Errorf("%s: split %q asked for but the header has no %q column (name it in data.columns.split, or set data.test_fraction to draw a test split)", name, split, cols.Split)
	}
	labelValues, groupValues := valueIndex(cols.LabelValues), valueIndex(cols.GroupValues)
	var rows []MetadataRow
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err) // csv.ParseError carries the line
		}
		line, _ := cr.FieldPos(0)
		where := fmt.Sprintf("%s:%d", name, line)
		row := MetadataRow{Line: line, Fine: -1, Group: -1}
		row.Path = strings.TrimSpace(rec[pathCol])
		if row.Path == "" {
			return nil, fmt.Errorf("%s: empty %s", where, cols.Path)
		}
		if p := filepath.FromSlash(row.Path); !filepath.IsLocal(p) {
			return nil, fmt.Errorf("%s: %s %q must be a relative path inside the dataset root (no leading / and no escaping ..)", where, cols.Path, row.Path)
		}
		if cols.ImageExt != "" && filepath.Ext(row.Path) == "" {
			row.Path += cols.ImageExt
		}
		if row.Label, err = parseCell(rec[labelCol], labelValues, false); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", where, cols.Label, err)
		}
		if fineCol >= 0 {
			if row.Fine, err = parseLabel(rec[fineCol], true); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", where, cols.Fine, err)
			}
		}
		if groupCol >= 0 {
			if row.Group, err = parseCell(rec[groupCol], groupValues, true); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", where, cols.Group, err)
			}
		}
		if splitCol >= 0 {
			v := strings.TrimSpace(rec[splitCol])
			s, ok := splitValues[v]
			if !ok {
				known := make([]string, 0, len(splitValues))
				for k := range splitValues {
					known = append(known, strconv.Quote(k))
				}
				sort.Strings(known)
				return nil, fmt.Errorf("%s: unknown %s value %q (known: %s; set CSVOptions.SplitValues)", where, cols.Split, v, strings.Join(known, ", "))
			}
			row.Split = s
		}
		rows = append(rows, row)
	}
	if splitCol < 0 && o.TestFraction > 0 {
		labels := make([]int64, len(rows))
		for i, r := range rows {
			labels[i] = r.Label
		}
		train, test, err := TrainValIndices(labels, o.TestFraction, o.Seed)
		if err != nil {
			return nil, fmt.Errorf("%s: test split: %w", name, err)
		}
		for _, i := range train {
			rows[i].Split = "train"
		}
		for _, i := range test {
			rows[i].Split = "test"
		}
	}
	if split == "" {
		return rows, nil
	}
	kept := rows[:0]
	for _, r := range rows {
		if r.Split == split {
			kept = append(kept, r)
		}
	}
	return kept, nil
}

// valueIndex maps each named value to its index (nil when there are no names).
func valueIndex(values []string) map[string]int64 {
	if len(values) == 0 {
		return nil
	}
	m := make(map[string]int64, len(values))
	for i, v := range values {
		m[v] = int64(i)
	}
	return m
}

// parseCell reads a label cell: one of the named values when values is set, else an integer
// (parseLabel).
func parseCell(s string, values map[string]int64, unknownOK bool) (int64, error) {
	if values == nil {
		return parseLabel(s, unknownOK)
	}
	s = strings.TrimSpace(s)
	if unknownOK && (s == "" || s == "-1") {
		return -1, nil
	}
	v, ok := values[s]
	if !ok {
		known := make([]string, 0, len(values))
		for k := range values {
			known = append(known, strconv.Quote(k))
		}
		sort.Strings(known)
		return 0, fmt.Errorf("%q is not one of the listed values %s", s, strings.Join(known, ", "))
	}
	return v, nil
}

// parseLabel reads a non-negative integer label; when unknownOK, an empty cell or -1 is -1.
func parseLabel(s string, unknownOK bool) (int64, error) {
	s = strings.TrimSpace(s)
	if unknownOK && (s == "" || s == "-1") {
		return -1, nil
	}
	v, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer label", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("label %d is negative", v)
	}
	return v, nil
}

// LoadMetadataCSV reads the images listed in a metadata CSV (the Waterbirds / CelebA / ISIC layout:
// images anywhere under root, one CSV row per image) for one split ("" = all rows). Image paths are
// relative to root. A missing or undecodable image is an error naming the CSV line and the file.
func LoadMetadataCSV(csvPath, root, split string, o CSVOptions) (*Dataset, error) {
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", csvPath, err)
	}
	f, err := os.Open(csvPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := ParseMetadataCSV(f, csvPath, split, o)
	if err != nil {
		return nil, err
	}
	ds, err := datasetFromRows(rows, csvPath, o, func(rel string) (string, func() ([]byte, error)) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		return p, func() ([]byte, error) { return os.ReadFile(p) }
	})
	if err != nil {
		return nil, err
	}
	ds.Name = strings.TrimSuffix(filepath.Base(csvPath), filepath.Ext(csvPath))
	if split != "" {
		ds.Name += "-" + split
	}
	return ds, nil
}

// datasetFromRows decodes the rows' images (open resolves a row's path to a description and a
// reader) and fills in labels and names.
func datasetFromRows(rows []MetadataRow, csvName string, o CSVOptions, open func(rel string) (string, func() ([]byte, error))) (*Dataset, error) {
	names := o.LabelNames
	if names == nil && len(o.Columns.LabelValues) > 0 {
		names = o.Columns.LabelValues
	}
	labelNames, err := labelNamesFor(rows, func(r MetadataRow) int64 { return r.Label }, names, csvName, "label")
	if err != nil {
		return nil, err
	}
	fineNames, err := labelNamesFor(rows, func(r MetadataRow) int64 { return r.Fine }, o.FineNames, csvName, "fine label")
	if err != nil {
		return nil, err
	}
	jobs := make([]imageJob, len(rows))
	for i, r := range rows {
		p, read := open(r.Path)
		jobs[i] = imageJob{source: fmt.Sprintf("%s:%d: image %s", csvName, r.Line, p), read: read}
	}
	pixels, err := decodeAll(jobs, o.ImageOptions)
	if err != nil {
		return nil, err
	}
	ds := &Dataset{
		Name: "metadata", N: len(rows), C: o.C, H: o.H, W: o.W,
		Pixels: pixels, Coarse: make([]int64, len(rows)), Fine: make([]int64, len(rows)), Group: make([]int64, len(rows)),
		CoarseNames: labelNames, FineNames: fineNames, Source: make([]string, len(rows)),
	}
	groups := int64(len(o.Columns.GroupValues))
	if groups == 0 {
		for _, r := range rows {
			groups = max(groups, r.Group+1)
		}
	}
	for i, r := range rows {
		ds.Coarse[i], ds.Fine[i], ds.Group[i] = r.Label, r.Fine, r.Group
		if o.Columns.GroupWithLabel && r.Group >= 0 {
			ds.Group[i] = r.Label*groups + r.Group
		}
		ds.Source[i] = fmt.Sprintf("%s:%d", csvName, r.Line)
	}
	return ds, ds.Validate()
}

// labelNamesFor returns the given names after checking every label is in range, or "0".."max".
func labelNamesFor(rows []MetadataRow, label func(MetadataRow) int64, names []string, csvName, what string) ([]string, error) {
	maxLabel := int64(-1)
	for _, r := range rows {
		l := label(r)
		if names != nil && l >= int64(len(names)) {
			return nil, fmt.Errorf("%s:%d: %s %d out of range: %d names given", csvName, r.Line, what, l, len(names))
		}
		maxLabel = max(maxLabel, l)
	}
	if names != nil {
		return append([]string(nil), names...), nil
	}
	if maxLabel > 1<<20 {
		return nil, fmt.Errorf("%s: %s %d is implausibly large (labels must be 0..K-1)", csvName, what, maxLabel)
	}
	out := make([]string, maxLabel+1)
	for i := range out {
		out[i] = strconv.Itoa(i)
	}
	return out, nil
}
