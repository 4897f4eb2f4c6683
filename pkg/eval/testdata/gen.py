#!/usr/bin/python3
"""Reference values for pkg/eval's ARI, NMI and silhouette, from scikit-learn.

Run with Debian's python3 (apt-get install python3-sklearn): /usr/bin/python3 gen.py
Writes metrics_fixtures.json next to this file.
"""
import json
import os

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score

rng = np.random.default_rng(20220417)
pairs = []


def add(name, a, b):
    a = [int(v) for v in a]
    b = [int(v) for v in b]
    pairs.append({"name": name, "truth": a, "pred": b,
                  "ari": float(adjusted_rand_score(a, b)),
                  "nmi": float(normalized_mutual_info_score(a, b))})


add("identical", [0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2])
add("permuted", [0, 0, 1, 1, 2, 2], [5, 5, 3, 3, 9, 9])
add("one_cluster_each", [0, 0, 0, 0], [1, 1, 1, 1])
add("all_singletons", [0, 1, 2, 3], [3, 2, 1, 0])
add("pred_one_cluster", [0, 0, 1, 1, 2, 2], [0, 0, 0, 0, 0, 0])
add("split_merge", [0, 0, 0, 1, 1, 1, 2, 2, 2], [0, 0, 1, 1, 2, 2, 3, 3, 3])
add("sklearn_doc", [0, 0, 1, 1], [0, 0, 1, 2])
add("against", [0, 0, 1, 1], [0, 1, 0, 1])
for i, (n, ka, kb) in enumerate([(50, 3, 4), (200, 5, 5), (500, 10, 7), (400, 2, 12)]):
    a = rng.integers(0, ka, n)
    b = np.where(rng.random(n) < 0.6, a % kb, rng.integers(0, kb, n))
    add("random_%d" % i, a, b)

sil = []
for i, (n, d, k) in enumerate([(30, 2, 3), (120, 5, 4), (200, 8, 6)]):
    centers = rng.normal(0, 3, (k, d))
    lab = rng.integers(0, k, n)
    lab[:k] = np.arange(k)
    x = centers[lab] + rng.normal(0, 1, (n, d))
    x = x.astype(np.float32)
    sil.append({"name": "blobs_%d" % i, "n": n, "d": d, "x": [float(v) for v in x.ravel()],
                "labels": [int(v) for v in lab],
                "silhouette": float(silhouette_score(x.astype(np.float64), lab))})
# a singleton cluster scores 0 for its point
x = np.array([[0, 0], [0, 1], [5, 5], [5, 6], [20, 20]], dtype=np.float32)
lab = [0, 0, 1, 1, 2]
sil.append({"name": "singleton", "n": 5, "d": 2, "x": [float(v) for v in x.ravel()], "labels": lab,
            "silhouette": float(silhouette_score(x.astype(np.float64), lab))})

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "metrics_fixtures.json")
with open(out, "w") as f:
    json.dump({"pairs": pairs, "silhouette": sil}, f, separators=(",", ":"))
print("wrote", out)
