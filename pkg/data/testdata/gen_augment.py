#!/usr/bin/python3
"""Fixtures for pkg/data's batched augmentation: torchvision.transforms.functional (0.14) on float
tensors, one image at a time. Run with Debian's python (torch 1.13, torchvision 0.14):

    /usr/bin/python3 pkg/data/testdata/gen_augment.py

Writes pkg/data/testdata/augment/*.npy (small; committed).
"""
import os

import numpy as np
import torch
import torchvision
import torchvision.transforms.functional as F

torch.set_num_threads(1)
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "augment")
os.makedirs(out, exist_ok=True)


def save(name, a):
    np.save(os.path.join(out, name + ".npy"), np.ascontiguousarray(a))


rng = np.random.default_rng(7)
N, H, W = 6, 20, 24  # not square and not powers of two: the grid's rounding is not exact there
img8 = rng.integers(0, 256, size=(N, 3, H, W), dtype=np.uint8)
img8[1] = img8[1, :1]  # gray image: r == g == b everywhere (hue's max == min branch)
img8[2] = rng.choice(np.array([0, 128, 255], dtype=np.uint8), size=(3, H, W))  # many channel ties
img8[3, :, :4, :] = 255  # saturated rows
save("img8", img8)
x = torch.from_numpy(img8).float() / 255  # ToTensor / convert_image_dtype

# (top, left, height, width) per image; flips per image
boxes = np.array([
    [0, 0, H, W],      # whole image
    [3, 5, 9, 11],     # interior, upscaled
    [11, 13, 9, 11],   # touching bottom-right corner
    [0, 0, 16, 16],    # top-left
    [4, 2, 13, 22],    # wide
    [2, 7, 18, 5],     # tall and thin
], dtype=np.int64)
flips = np.array([False, True, False, True, True, False])
save("boxes", boxes)
save("flips", flips)
for tag, size in [("up", (32, 32)), ("down", (7, 9)), ("same", (16, 16))]:
    res = []
    for i in range(N):
        t, l, h, w = (int(v) for v in boxes[i])
        r = F.resized_crop(x[i], t, l, h, w, list(size), interpolation=F.InterpolationMode.BILINEAR)
        if flips[i]:
            r = F.hflip(r)
        res.append(r)
    save("crop_" + tag, torch.stack(res).numpy())

bright = np.array([0.6, 1.0, 1.4, 0.0, 0.93, 1.21])
contrast = np.array([0.6, 1.0, 1.4, 0.0, 1.07, 0.77])
sat = np.array([0.6, 1.0, 1.4, 0.0, 0.81, 1.33])
hue = np.array([-0.1, 0.0, 0.1, 0.5, -0.5, 0.037])
for name, fac in [("brightness", bright), ("contrast", contrast), ("saturation", sat), ("hue", hue)]:
    save("fac_" + name, fac)
    fn = getattr(F, "adjust_" + name)
    save("adj_" + name, torch.stack([fn(x[i], float(fac[i])) for i in range(N)]).numpy())
save("gray", torch.stack([F.rgb_to_grayscale(x[i]) for i in range(N)]).numpy())
mean, std = [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]
save("normalized", torch.stack([F.normalize(x[i], mean, std) for i in range(N)]).numpy())
# 1 channel: contrast blends with the image's own mean; saturation and hue are the identity
x1 = x[:, :1]
save("adj_contrast_1ch", torch.stack([F.adjust_contrast(x1[i], float(contrast[i])) for i in range(N)]).numpy())
print("wrote", out, "with torch", torch.__version__, "torchvision", torchvision.__version__)
