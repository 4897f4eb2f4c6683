#!/usr/bin/python3
"""METHOD.md's "cheap check": does L_spread prevent class collapse where SupCon does not?

Data: 2 coarse classes, each a mixture of 3 Gaussian subclasses with sizes
400/200/100 (1400 training points), in R^32.  Every subclass mean is drawn
independently, mu ~ N(0, MEAN_STD^2 I_32); points are mu + N(0, POINT_STD^2 I).
An independent test set (same sizes, same means) is drawn for the probes.
Encoder: MLP 32 -> 128 -> ReLU -> 128 -> ReLU -> 16, output L2-normalised by the
loss (embeddings on the 16-d sphere).  Augmentation: additive Gaussian noise
x + N(0, AUG_STD^2 I), two independent views per sample.  Adam, lr 1e-3, batch
128 samples x 2 views (reshuffled every epoch), 1500 steps, tau 0.5, denominator
'all', float32.  Evaluation on the clean (unaugmented) normalised embeddings:
  * intra-class cosine: mean cosine over distinct pairs within a coarse class
    (averaged over the 2 classes) on the test set;
  * coarse probe / fine probe: multinomial logistic regression (L-BFGS,
    L2 1e-4, 300 iterations) fitted on the training embeddings with coarse
    (2-way) / fine (6-way) labels, accuracy on the test set.
A fine probe at 4/7 = 0.571 is "no better than the majority subclass" (coarse
class right, then always the biggest subclass).

Usage: /usr/bin/python3 tools/reference/synthetic.py [--seeds 0 1 2] [--steps 1500]
"""

import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import losses as L  # noqa: E402

DIM_IN = 32
DIM_OUT = 16
HIDDEN = 128
SIZES = [400, 200, 100]
MEAN_STD = 1.0
POINT_STD = 1.0
AUG_STD = 0.5
TAU = 0.5
BATCH = 128
LR = 1e-3


def make_data(seed):
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((6, DIM_IN)) * MEAN_STD

    def draw():
        xs, coarse, fine = [], [], []
        for c in range(2):
            for s, size in enumerate(SIZES):
                f = 3 * c + s
                xs.append(means[f] + POINT_STD * rng.standard_normal((size, DIM_IN)))
                coarse += [c] * size
                fine += [f] * size
        return (torch.tensor(np.concatenate(xs), dtype=torch.float32),
                torch.tensor(coarse), torch.tensor(fine))

    return draw(), draw()


def make_encoder():
    return nn.Sequential(nn.Linear(DIM_IN, HIDDEN), nn.ReLU(),
                         nn.Linear(HIDDEN, HIDDEN), nn.ReLU(),
                         nn.Linear(HIDDEN, DIM_OUT))


def train(method, alpha, x, y, steps, seed):
    torch.manual_seed(seed)
    enc = make_encoder()
    opt = torch.optim.Adam(enc.parameters(), lr=LR)
    n = x.shape[0]
    gen = torch.Generator().manual_seed(seed)
    perm, pos = torch.randperm(n, generator=gen), 0
    for _ in range(steps):
        if pos + BATCH > n:
            perm, pos = torch.randperm(n, generator=gen), 0
        idx = perm[pos:pos + BATCH]
        pos += BATCH
        xb = x[idx]
        views = torch.stack([xb + AUG_STD * torch.randn(xb.shape, generator=gen),
                             xb + AUG_STD * torch.randn(xb.shape, generator=gen)], dim=1)
        z = enc(views.reshape(-1, DIM_IN)).reshape(BATCH, 2, DIM_OUT)
        if method == "simclr":
            loss = L.simclr(z, TAU)
        else:
            loss = L.spread(z, y[idx], TAU, alpha, "all")
        opt.zero_grad()
        loss.backward()
        opt.step()
    return enc


def embed(enc, x):
    with torch.no_grad():
        return L.l2_normalize(enc(x))


def intra_class_cosine(z, y):
    vals = []
    for c in y.unique():
        zc = z[y == c]
        g = zc @ zc.t()
        m = zc.shape[0]
        vals.append(float((g.sum() - g.diagonal().sum()) / (m * (m - 1))))
    return float(np.mean(vals))


def probe(z_tr, y_tr, z_te, y_te):
    k = int(y_tr.max()) + 1
    w = torch.zeros(z_tr.shape[1], k, requires_grad=True)
    b = torch.zeros(k, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(z_tr @ w + b, y_tr) + 1e-4 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float(((z_te @ w + b).argmax(1) == y_te).float().mean())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=1500)
    args = ap.parse_args()
    torch.set_num_threads(4)
    runs = [("SupCon", "spread", 1.0)]
    runs += [(f"L_spread a={a:.1f}", "spread", a) for a in (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)]
    runs += [("cNCE only (a=0)", "spread", 0.0), ("SimCLR", "simclr", 0.0)]
    print(f"| loss | intra-class cos | coarse probe | fine probe (6-way) |  (mean over seeds {args.seeds}, "
          f"{args.steps} steps)")
    print("|---|---|---|---|")
    for name, method, alpha in runs:
        res = []
        t0 = time.time()
        for seed in args.seeds:
            (xtr, ctr, ftr), (xte, cte, fte) = make_data(seed)
            enc = train(method, alpha, xtr, ctr, args.steps, seed)
            ztr, zte = embed(enc, xtr), embed(enc, xte)
            res.append((intra_class_cosine(zte, cte), probe(ztr, ctr, zte, cte), probe(ztr, ftr, zte, fte)))
        r = np.array(res)
        mean, lo, hi = r.mean(0), r.min(0), r.max(0)
        cells = [f"{mean[j]:.3f} ({lo[j]:.2f}-{hi[j]:.2f})" for j in range(3)]
        print(f"| {name} | " + " | ".join(cells) + f" |  [{time.time() - t0:.0f}s]", flush=True)


if __name__ == "__main__":
    main()
