// Package data reads the image datasets spreadtrain trains on into memory as uint8 NCHW arrays with
// coarse, fine and group labels, and holds the label hierarchies, splits and synthetic
// spurious-correlation sets built on top of them.
//
// The readers are pure Go. The torch side keeps a Dataset's Pixels as one uint8 tensor on the device,
// draws index batches from a seeded sampler, and augments the batch there (torchvision's semantics,
// batched); a streaming loader gathers batches with Go workers for data that does not fit.
//
// Files are named for their concern:
//   - dataset.go, source.go: the Dataset type, and the `data:` config section that names one and loads it
//   - format_*.go: one file format each (IDX, CIFAR binary, metadata CSV, JPEG/PNG decoding, image
//     folders, tar.gz archives); synthetic.go builds the spurious-correlation sets
//   - waterbirds.go, celeba.go, tinyimagenet.go: the official layouts of those datasets, as downloaded
//   - labels_map.go, labels_split.go: coarse/fine label hierarchies; train/validation splits and
//     per-class sampling
//   - batch_sampler.go, batch_device.go, batch_loader.go: the seeded, resumable index order; a dataset
//     uploaded to a device; the Loader serving batches from either
//   - augment_config.go, augment_ops.go, augment_pipeline.go: the `augment:` config section;
//     batched counterparts of torchvision.transforms.functional; the Augmenter that composes them into views
//   - fetch.go, mnist_module.go: downloading and verifying the datasets that can be fetched
//
// Every reader returns an error naming the file (and the record or
// row where there is one) instead of panicking on bad input; the fuzz targets in fuzz_test.go hold
// the parsers to that.
//
// Label convention: readers set Fine to the dataset's original class and Coarse to the same value
// with CoarseNames == FineNames; ApplyLabelMap then replaces Coarse by a coarser hierarchy (CIFAR-10
// vehicles/animals, CIFAR-100 superclasses, ...). Datasets that come with their own training label
// (CIFAR-100's coarse byte, a metadata CSV's label column, Waterbirds' y, CelebA's target attribute)
// set Coarse from it directly; the robustness sets set Group to (label, spurious attribute).
package data
