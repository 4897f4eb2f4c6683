// Package data reads the image datasets spreadtrain trains on into memory as uint8 NCHW arrays with
// coarse, fine and group labels, and holds the label hierarchies, splits and synthetic
// spurious-correlation sets built on top of them.
//
// The readers are pure Go. The torch side (augment*.go, device.go, loader.go) keeps a Dataset's Pixels
// as one uint8 tensor on the device, draws index batches from a seeded sampler, and augments the
// batch there (torchvision's semantics, batched); a streaming loader gathers batches with Go workers
// for data that does not fit. Every reader returns an error naming the file (and the record or
// row where there is one) instead of panicking on bad input; the fuzz targets in fuzz_test.go hold
// the parsers to that.
//
// Label convention: readers set Fine to the dataset's original class and Coarse to the same value
// with CoarseNames == FineNames; ApplyLabelMap then replaces Coarse by a coarser hierarchy (CIFAR-10
// vehicles/animals, CIFAR-100 superclasses, ...). Datasets that come with their own training label
// (CIFAR-100's coarse byte, a metadata CSV's label column, Waterbirds' y, CelebA's target attribute)
// set Coarse from it directly; the robustness sets set Group to (label, spurious attribute).
package data
