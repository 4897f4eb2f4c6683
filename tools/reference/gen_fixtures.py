#!/usr/bin/python3
"""Generate testdata/losses/ fixtures from the PyTorch reference (losses.py).

Usage (from the repository root):
    /usr/bin/python3 tools/reference/gen_fixtures.py [--out testdata/losses]

Deterministic: a fixed numpy seed, float64, torch single-threaded.  Before
writing anything it runs self-checks (asserts):
  * vectorised losses == slow per-anchor loops (supcon_loop / cnce_loop);
  * torch autograd gradients == central finite differences (torch.autograd.gradcheck)
    for several small float64 cases, canonical and compat;
  * data-parallel consistency: with R equal ranks, the mean of the R local-anchor
    losses equals the full-batch loss (every anchor has a positive when V >= 2);
  * the compat mode reproduces METHOD.md's golden values.
See tools/reference/README.md for the file format.
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import losses as L  # noqa: E402

torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)

SEED = 20220407
ALPHAS = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]
TAUS = [0.05, 0.07, 0.1, 0.2, 0.5, 0.7, 1.0]


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------

def make_labels(rng, n, kind, num_classes):
    if kind == "one_class":
        return np.zeros(n, dtype=np.int64)
    if kind == "all_distinct":
        return rng.permutation(n).astype(np.int64)
    if kind == "singletons":
        # about half of the classes have a single member
        k = max(2, num_classes)
        y = rng.integers(0, k // 2 + 1, size=n)
        n_single = min(n // 2, k - (k // 2 + 1))
        idx = rng.choice(n, size=n_single, replace=False)
        y[idx] = np.arange(k // 2 + 1, k // 2 + 1 + n_single)
        return y.astype(np.int64)
    # random labels with num_classes classes, arbitrary (non-contiguous) ids
    ids = rng.choice(1000, size=num_classes, replace=False)
    return ids[rng.integers(0, num_classes, size=n)].astype(np.int64)


def make_z(rng, y, v, d):
    """Raw embeddings: class mean + sample offset + view noise, random row scales."""
    classes = np.unique(y)
    means = {c: rng.standard_normal(d) * rng.uniform(0.0, 1.5) for c in classes}
    n = len(y)
    z = np.empty((n, v, d))
    for i in range(n):
        base = means[y[i]] + 0.7 * rng.standard_normal(d)
        for w in range(v):
            z[i, w] = base + rng.uniform(0.1, 0.8) * rng.standard_normal(d)
    z *= rng.uniform(0.2, 5.0, size=(n, v, 1))    # losses must not depend on the scale
    return z


# ---------------------------------------------------------------------------
# canonical losses
# ---------------------------------------------------------------------------

def canonical_values(z_np, y_np, tau, alpha, denominator, offset, na):
    """Values and gradients (wrt all candidates) of the four canonical losses."""
    out = {}
    for name in ("supcon", "cnce", "spread", "simclr"):
        z = torch.tensor(z_np, requires_grad=True)
        y = torch.tensor(y_np)
        za, ya = z[offset:offset + na], y[offset:offset + na]
        if name == "supcon":
            loss = L.supcon_ga(za, ya, z, y, offset, tau, denominator)
        elif name == "cnce":
            loss = L.cnce_ga(za, ya, z, y, offset, tau)
        elif name == "spread":
            loss = L.spread_ga(za, ya, z, y, offset, tau, alpha, denominator)
        else:
            loss = L.simclr_ga(za, z, offset, tau)
        (g,) = torch.autograd.grad(loss, z)
        assert torch.isfinite(loss) and torch.isfinite(g).all(), name
        out[name] = (float(loss), g.numpy().copy())
    return out


def check_loops(z_np, y_np, tau, alpha, denominator, offset, na, vals):
    z = torch.tensor(z_np)
    y = torch.tensor(y_np)
    sc = float(L.supcon_loop(z, y, tau, denominator, offset, na))
    cn = float(L.cnce_loop(z, y, tau, offset, na))
    sm = float(L.simclr_loop(z, tau, offset, na))
    for name, ref in (("supcon", sc), ("cnce", cn), ("simclr", sm),
                      ("spread", alpha * sc + (1 - alpha) * cn)):
        got = vals[name][0]
        assert abs(got - ref) <= 1e-11 * max(1.0, abs(ref)), (name, got, ref)


def check_gradients():
    """Autograd vs central finite differences (float64) for small cases."""
    rng = np.random.default_rng(1)
    cases = [
        # n, v, d, classes kind, tau, denominator, offset, na
        (5, 2, 4, "random3", 0.5, "all", 0, 5),
        (6, 3, 3, "random2", 0.1, "negatives", 0, 6),
        (8, 2, 5, "random3", 0.2, "negatives", 4, 4),   # anchor subset (rank 1 of 2)
        (4, 2, 3, "one_class", 1.0, "negatives", 0, 4),
        (4, 4, 2, "all_distinct", 0.07, "all", 2, 2),
    ]
    for n, v, d, kind, tau, den, off, na in cases:
        k = int(kind[-1]) if kind.startswith("random") else 0
        y_np = make_labels(rng, n, kind.rstrip("0123456789"), k)
        z0 = torch.tensor(make_z(rng, y_np, v, d), requires_grad=True)
        y = torch.tensor(y_np)
        fns = {
            "supcon": lambda z: L.supcon_ga(z[off:off + na], y[off:off + na], z, y, off, tau, den),
            "cnce": lambda z: L.cnce_ga(z[off:off + na], y[off:off + na], z, y, off, tau),
            "spread": lambda z: L.spread_ga(z[off:off + na], y[off:off + na], z, y, off, tau, 0.3, den),
            "simclr": lambda z: L.simclr_ga(z[off:off + na], z, off, tau),
        }
        for name, fn in fns.items():
            assert torch.autograd.gradcheck(fn, (z0,), eps=1e-6, atol=1e-7, rtol=1e-5), name
    # compat mode (points chosen away from the clamp's kink)
    for b, d, lc in ((6, 3, True), (7, 4, False)):
        h0 = torch.tensor(rng.standard_normal((b, d)) * 0.8, requires_grad=True)
        h1 = torch.tensor(rng.standard_normal((b, d)) * 0.8, requires_grad=True)
        y = torch.tensor(rng.integers(0, 3, size=b))
        m = L.compat_logits(h1, h0, 0.5, lc).detach()
        assert (torch.abs(m - 1.0) > 1e-3).all()
        for key in ("supcon", "cnce", "spread", "simclr"):
            fn = lambda a, c: L.compat_losses([a, c], y, 0.5, 0.5, lc)[key]
            assert torch.autograd.gradcheck(fn, (h0, h1), eps=1e-7, atol=1e-7, rtol=1e-5), key
    print("gradient check (autograd vs finite differences): OK")


def check_data_parallel():
    rng = np.random.default_rng(2)
    for ranks, b, v in ((2, 6, 2), (4, 5, 3)):
        n = ranks * b
        y_np = make_labels(rng, n, "random", 3)
        z = torch.tensor(make_z(rng, y_np, v, 6))
        y = torch.tensor(y_np)
        for den in ("all", "negatives"):
            full = float(L.spread(z, y, 0.3, 0.4, den))
            parts = [float(L.spread_ga(z[r * b:(r + 1) * b], y[r * b:(r + 1) * b], z, y, r * b, 0.3, 0.4, den))
                     for r in range(ranks)]
            assert abs(full - sum(parts) / ranks) < 1e-12, (full, parts)
        full = float(L.simclr(z, 0.3))
        parts = [float(L.simclr_ga(z[r * b:(r + 1) * b], z, r * b, 0.3)) for r in range(ranks)]
        assert abs(full - sum(parts) / ranks) < 1e-12
    print("data-parallel consistency: OK")


def canonical_case_specs(rng):
    """(name, n, v, d, label kind, num classes, tau, alpha, denominator, offset, na)."""
    specs = [
        ("n2_one_class", 2, 2, 3, "one_class", 1, 0.5, 0.5, "all", 0, 2),
        ("n2_one_class_neg", 2, 2, 3, "one_class", 1, 0.5, 0.5, "negatives", 0, 2),
        ("n2_two_classes", 2, 2, 4, "all_distinct", 2, 0.1, 0.25, "all", 0, 2),
        ("n2_two_classes_neg", 2, 3, 4, "all_distinct", 2, 0.2, 0.75, "negatives", 0, 2),
        ("one_class_n16", 16, 2, 8, "one_class", 1, 0.5, 0.5, "all", 0, 16),
        ("one_class_n16_neg", 16, 2, 8, "one_class", 1, 0.5, 0.5, "negatives", 0, 16),
        ("all_distinct_n12", 12, 2, 16, "all_distinct", 12, 0.2, 0.5, "all", 0, 12),
        ("all_distinct_n12_neg", 12, 3, 16, "all_distinct", 12, 0.2, 0.1, "negatives", 0, 12),
        ("singletons_n20", 20, 2, 8, "singletons", 10, 0.3, 0.5, "all", 0, 20),
        ("singletons_n20_neg", 20, 2, 8, "singletons", 10, 0.3, 0.9, "negatives", 0, 20),
        ("d2_v4", 10, 4, 2, "random", 3, 0.5, 0.5, "all", 0, 10),
        ("d256_small", 8, 2, 256, "random", 2, 0.1, 0.5, "negatives", 0, 8),
        ("tau005", 24, 2, 16, "random", 4, 0.05, 0.5, "all", 0, 24),
        ("tau005_neg", 24, 2, 16, "random", 4, 0.05, 0.5, "negatives", 0, 24),
        ("tau1", 24, 3, 16, "random", 4, 1.0, 0.25, "all", 0, 24),
        ("alpha0", 16, 2, 8, "random", 3, 0.5, 0.0, "all", 0, 16),
        ("alpha1", 16, 2, 8, "random", 3, 0.5, 1.0, "negatives", 0, 16),
        # data-parallel: candidates = all ranks' batches, anchors = one rank's rows
        ("dp2_rank1", 16, 2, 8, "random", 3, 0.5, 0.5, "all", 8, 8),
        ("dp2_rank1_neg", 16, 2, 8, "random", 3, 0.5, 0.5, "negatives", 8, 8),
        ("dp2_rank0", 32, 2, 16, "random", 5, 0.1, 0.3, "all", 0, 16),
        ("dp4_rank2", 32, 2, 16, "random", 5, 0.2, 0.7, "negatives", 16, 8),
        ("dp4_rank3_v3", 40, 3, 8, "singletons", 12, 0.5, 0.5, "all", 30, 10),
        ("dp2_rank1_one_class", 12, 2, 8, "one_class", 1, 0.5, 0.5, "negatives", 6, 6),
        ("dp8_rank5_v4", 64, 4, 12, "random", 20, 0.1, 0.5, "all", 40, 8),
        # big cases
        ("big_n512_c10", 512, 2, 32, "random", 10, 0.1, 0.5, "all", 0, 512),
        ("big_n512_c100_neg", 512, 2, 16, "random", 100, 0.5, 0.25, "negatives", 0, 512),
        ("big_n512_v4_dp", 512, 4, 8, "random", 2, 0.07, 0.75, "negatives", 256, 256),
    ]
    for k in range(56):
        n = int(rng.choice([3, 4, 5, 8, 12, 16, 24, 32, 48, 64, 96, 128]))
        v = int(rng.integers(2, 5))
        d = int(rng.choice([2, 3, 4, 8, 16, 32, 64, 128, 256]))
        while n * v * d > 12000:
            d //= 2
        d = max(d, 2)
        nc = int(rng.integers(1, min(n, 100) + 1))
        kind = str(rng.choice(["random", "random", "random", "singletons", "one_class", "all_distinct"]))
        tau = float(rng.choice(TAUS))
        alpha = float(rng.choice(ALPHAS))
        den = "all" if k % 2 == 0 else "negatives"
        if k % 5 == 4 and n >= 4:
            ranks = int(rng.choice([2, 4])) if n % 4 == 0 else 2
            b = n // ranks
            n = b * ranks
            r = int(rng.integers(0, ranks))
            off, na = r * b, b
        else:
            off, na = 0, n
        specs.append((f"rand{k:02d}", n, v, d, kind, nc, tau, alpha, den, off, na))
    return specs


def write_canonical(out_dir, rng):
    cases = []
    for (name, n, v, d, kind, nc, tau, alpha, den, off, na) in canonical_case_specs(rng):
        y = make_labels(rng, n, kind, nc)
        z = make_z(rng, y, v, d)
        vals = canonical_values(z, y, tau, alpha, den, off, na)
        if n * v <= 160:
            check_loops(z, y, tau, alpha, den, off, na, vals)
        prefix = name
        np.save(os.path.join(out_dir, f"{prefix}_z.npy"), np.ascontiguousarray(z, dtype=np.float64))
        np.save(os.path.join(out_dir, f"{prefix}_y.npy"), np.ascontiguousarray(y, dtype=np.int64))
        for loss_name in ("supcon", "cnce", "spread", "simclr"):
            np.save(os.path.join(out_dir, f"{prefix}_grad_{loss_name}.npy"),
                    np.ascontiguousarray(vals[loss_name][1], dtype=np.float64))
        cases.append({
            "name": name, "file_prefix": prefix, "n": n, "v": v, "d": d,
            "tau": tau, "alpha": alpha, "denominator": den,
            "anchor_offset": off, "num_anchors": na,
            "supcon": vals["supcon"][0], "cnce": vals["cnce"][0],
            "spread": vals["spread"][0], "simclr": vals["simclr"][0],
        })
    with open(os.path.join(out_dir, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)
        f.write("\n")
    return cases


# ---------------------------------------------------------------------------
# compat mode
# ---------------------------------------------------------------------------

def compat_entry(out_dir, name, h0_np, h1_np, y_np, tau, lc_norm):
    h0 = torch.tensor(h0_np, requires_grad=True)
    h1 = torch.tensor(h1_np, requires_grad=True)
    y = torch.tensor(y_np)
    r50 = L.compat_losses([h0, h1], y, tau, 0.5, lc_norm, clamp=True)
    r25 = L.compat_losses([h0, h1], y, tau, 0.25, lc_norm, clamp=True)
    rnc = L.compat_losses([h0, h1], y, tau, 0.5, lc_norm, clamp=False)
    g0, g1 = torch.autograd.grad(r50["spread"], (h0, h1))
    assert torch.isfinite(g0).all() and torch.isfinite(g1).all()
    np.save(os.path.join(out_dir, f"{name}_h0.npy"), np.ascontiguousarray(h0_np, dtype=np.float64))
    np.save(os.path.join(out_dir, f"{name}_h1.npy"), np.ascontiguousarray(h1_np, dtype=np.float64))
    np.save(os.path.join(out_dir, f"{name}_y.npy"), np.ascontiguousarray(y_np, dtype=np.int64))
    np.save(os.path.join(out_dir, f"{name}_grad_spread_h0.npy"), g0.numpy().copy())
    np.save(os.path.join(out_dir, f"{name}_grad_spread_h1.npy"), g1.numpy().copy())
    return {
        "name": name, "file_prefix": name, "b": int(h0_np.shape[0]), "d": int(h0_np.shape[1]),
        "tau": tau, "lc_norm": lc_norm,
        "supcon": float(r50["supcon"]),
        "supcon_noclamp": float(rnc["supcon"]),
        "cnce": float(r50["cnce"]),
        "spread_alpha_0_5": float(r50["spread"]),
        "spread_alpha_0_25": float(r25["spread"]),
        "simclr": float(r50["simclr"]),
        "simclr_noclamp": float(rnc["simclr"]),
    }


def write_compat(out_dir, rng):
    entries = []
    h0 = np.array(L.GOLDEN_VIEW0)
    h1 = np.array(L.GOLDEN_VIEW1)
    y = np.array(L.GOLDEN_LABELS, dtype=np.int64)
    e = compat_entry(out_dir, "compat_golden", h0, h1, y, L.GOLDEN_TAU, True)
    g = L.GOLDEN
    for key, gkey in (("supcon", "supcon"), ("supcon_noclamp", "supcon_noclamp"),
                      ("spread_alpha_0_5", "spread_alpha_0.5"), ("spread_alpha_0_25", "spread_alpha_0.25"),
                      ("simclr", "simclr")):
        assert abs(e[key] - g[gkey]) < 1e-9, (key, e[key], g[gkey])
    entries.append(e)
    specs = [
        # name, b, d, classes (0 = all distinct), tau, lc_norm
        ("compat_b8", 8, 4, 3, 0.5, True),
        ("compat_b16", 16, 8, 4, 0.5, True),
        ("compat_b32", 32, 16, 5, 0.5, True),
        ("compat_b64", 64, 32, 10, 0.5, True),
        ("compat_one_class", 10, 6, 1, 0.5, True),
        ("compat_all_distinct", 10, 6, 0, 0.5, True),
        ("compat_tau01", 16, 8, 3, 0.1, True),
        ("compat_tau1", 16, 8, 3, 1.0, True),
        ("compat_nolcnorm", 16, 8, 3, 0.5, False),
        ("compat_nolcnorm_b32", 32, 4, 6, 0.5, False),
        ("compat_unitnorm", 24, 8, 4, 0.5, True),
    ]
    for name, b, d, k, tau, lc in specs:
        if k == 0:
            y = rng.permutation(b).astype(np.int64)
        else:
            y = rng.integers(0, k, size=b).astype(np.int64)
        base = rng.standard_normal((b, d))
        h0 = (base + 0.5 * rng.standard_normal((b, d))) * rng.uniform(0.3, 2.0, size=(b, 1))
        h1 = (base + 0.5 * rng.standard_normal((b, d))) * rng.uniform(0.3, 2.0, size=(b, 1))
        if name == "compat_unitnorm":   # normalised inputs: lc_norm quirk == cosine
            h0 /= np.linalg.norm(h0, axis=1, keepdims=True)
            h1 /= np.linalg.norm(h1, axis=1, keepdims=True)
        m = L.compat_logits(torch.tensor(h1), torch.tensor(h0), tau, lc).numpy()
        assert np.abs(m - 1.0).min() > 1e-6     # stay away from the clamp's kink
        entries.append(compat_entry(out_dir, name, h0, h1, y, tau, lc))
    with open(os.path.join(out_dir, "compat.json"), "w") as f:
        json.dump(entries, f, indent=1)
        f.write("\n")
    return entries


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="testdata/losses")
    ap.add_argument("--skip-checks", action="store_true")
    args = ap.parse_args()
    if not args.skip_checks:
        check_gradients()
        check_data_parallel()
    os.makedirs(args.out, exist_ok=True)
    for f in os.listdir(args.out):
        if f.endswith(".npy") or f.endswith(".json"):
            os.remove(os.path.join(args.out, f))
    rng = np.random.default_rng(SEED)
    cases = write_canonical(args.out, rng)
    entries = write_compat(args.out, rng)
    total = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print(f"wrote {len(cases)} canonical cases, {len(entries)} compat cases, "
          f"{total / 1e6:.2f} MB in {args.out}")


if __name__ == "__main__":
    main()
