#!/usr/bin/python3
"""Augmented two-view batches per second on CPU: spreadtrain's on-device batched augmentation (the Go
benchmark BenchmarkAugmentTwoViews in pkg/data) against the reference pipeline, torchvision transforms
on PIL images through a PyTorch DataLoader (num_workers 0 and 2), on the same images, one intra-op
thread each. Batch 256, 32x32x3, two views, the reference augmentation.

    /usr/bin/python3 bench/augment.py [--per-class 100] [--batches 12] [--rounds 3]

Needs `make shim`. Images: ../shared/data/cifar10-jpg/cifar10-jpg-train.tar.gz (the first --per-class
images of each class by name, as pkg/data.LoadImageTarGz takes them), else random uint8 images.
Rounds alternate between the two sides and the median is reported, as the machine may be shared.
"""
import argparse
import io
import os
import re
import statistics
import subprocess
import sys
import tarfile
import time

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAR = "/work/shared/data/cifar10-jpg/cifar10-jpg-train.tar.gz"
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def load_images(per_class):
    if not os.path.exists(TAR):
        rng = np.random.default_rng(0)
        return [Image.fromarray(a) for a in rng.integers(0, 256, (per_class * 10, 32, 32, 3), dtype=np.uint8)], "random"
    by_class = {}
    with tarfile.open(TAR, "r:gz") as tf:
        for m in tf:
            parts = m.name.lstrip("./").split("/")
            if not m.isfile() or len(parts) != 3 or parts[0] != "train":
                continue
            by_class.setdefault(parts[1], []).append((parts[2], tf.extractfile(m).read()))
    imgs = []
    for c in sorted(by_class):
        for _, b in sorted(by_class[c])[:per_class]:
            imgs.append(Image.open(io.BytesIO(b)).convert("RGB"))
    return imgs, TAR


class TwoViews(torch.utils.data.Dataset):
    def __init__(self, imgs):
        self.imgs = imgs
        self.t = T.Compose([
            T.RandomResizedCrop(32, scale=(0.2, 1.0)),
            T.RandomHorizontalFlip(),
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            T.RandomGrayscale(p=0.2),
            T.ToTensor(),
            T.Normalize(MEAN, STD),
        ])

    def __len__(self):
        return len(self.imgs)

    def __getitem__(self, i):
        img = self.imgs[i]
        return torch.stack([self.t(img), self.t(img)]), i


def worker_init(_):
    torch.set_num_threads(1)


def torchvision_rate(imgs, workers, batches):
    dl = torch.utils.data.DataLoader(TwoViews(imgs), batch_size=256, shuffle=True, drop_last=True,
                                     num_workers=workers, worker_init_fn=worker_init,
                                     persistent_workers=workers > 0)
    n, start, it = 0, None, None
    while n < batches + 1:
        if it is None:
            it = iter(dl)
        try:
            next(it)
        except StopIteration:
            it = None
            continue
        if start is None:  # the first batch pays for worker start-up
            start = time.perf_counter()
        else:
            n += 1
    return batches / (time.perf_counter() - start)


def go_rate(batches):
    env = dict(os.environ, PATH="/usr/local/go/bin:" + os.environ.get("PATH", ""), SPREADTRAIN_BENCH_PER_CLASS=str(args.per_class))
    out = subprocess.run(["go", "test", "-run", "^$", "-bench", "AugmentTwoViews/resident", "-benchtime", f"{batches}x",
                          "-count", "1", "./pkg/data/"], cwd=ROOT, env=env, capture_output=True, text=True)
    m = re.search(r"([\d.]+) batches/s", out.stdout)
    if not m:
        sys.exit("go benchmark failed:\n" + out.stdout + out.stderr)
    return float(m.group(1))


ap = argparse.ArgumentParser()
ap.add_argument("--per-class", type=int, default=100)
ap.add_argument("--batches", type=int, default=12)
ap.add_argument("--rounds", type=int, default=3)
args = ap.parse_args()
torch.set_num_threads(1)
imgs, src = load_images(args.per_class)
print(f"images: {src}, {len(imgs)}; batch 256 x 2 views, 32x32x3, 1 intra-op thread, {os.cpu_count()} cores")
rates = {"spreadtrain (Go, on-device batched)": [], "torchvision DataLoader num_workers=0": [],
         "torchvision DataLoader num_workers=2": []}
for r in range(args.rounds):
    rates["spreadtrain (Go, on-device batched)"].append(go_rate(args.batches))
    rates["torchvision DataLoader num_workers=0"].append(torchvision_rate(imgs, 0, args.batches))
    rates["torchvision DataLoader num_workers=2"].append(torchvision_rate(imgs, 2, args.batches))
med = {k: statistics.median(v) for k, v in rates.items()}
for k, v in rates.items():
    print(f"{k:40s} {med[k]:7.2f} batches/s  (rounds: {', '.join(f'{x:.2f}' for x in v)})")
ours = med["spreadtrain (Go, on-device batched)"]
for k in list(med)[1:]:
    print(f"ratio spreadtrain / {k.split(' ', 1)[1]}: {ours / med[k]:.2f}x")
