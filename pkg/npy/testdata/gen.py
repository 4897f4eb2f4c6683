#!/usr/bin/python3
"""Regenerates the .npy fixtures with real numpy: run from this directory.

Writes fixtures/*.npy plus fixtures.json, which lists each file's expected
dtype, shape and C-order values so the Go test needs no numpy.
"""
import io
import json
import os

import numpy as np
from numpy.lib import format as npformat

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures")

F32 = np.array([0.0, -1.5, 3.25, 1e-7, 65504.0, -0.0], dtype=np.float32)
F64 = np.array([1e300, -2.5e-300, np.pi, -0.0], dtype=np.float64)
I64 = np.array([2**63 - 1, -(2**63), 0, -1], dtype=np.int64)
I32 = np.array([2**31 - 1, -(2**31), 7, -7], dtype=np.int32)
U8 = np.arange(0, 256, 32, dtype=np.uint8)
B1 = np.array([True, False, False, True, True])


def cases():
    yield "f4_v1", F32.reshape(2, 3), {}
    yield "f8_v1", F64, {}
    yield "i8_v1", I64.reshape(2, 2), {}
    yield "i4_v1", I32, {}
    yield "u1_v1", U8.reshape(2, 2, 2), {}
    yield "b1_v1", B1, {}
    for name, a in [("f4", F32), ("f8", F64), ("i8", I64), ("i4", I32)]:
        yield name + "_be", a.astype(a.dtype.newbyteorder(">")), {}
    yield "f4_v2", F32.reshape(3, 2), {"version": (2, 0)}
    yield "i8_v2", I64, {"version": (2, 0)}
    yield "f8_v3", F64.reshape(2, 2), {"version": (3, 0)}
    yield "u1_v3", U8, {"version": (3, 0)}
    yield "f8_fortran", np.asfortranarray(np.arange(12, dtype=np.float64).reshape(3, 4)), {}
    yield "i4_fortran3d", np.asfortranarray(np.arange(24, dtype=np.int32).reshape(2, 3, 4)), {}
    yield "b1_fortran", np.asfortranarray((np.arange(6) % 4 == 0).reshape(2, 3)), {}
    yield "f8_scalar", np.array(2.5), {}
    yield "f4_empty", np.zeros((0, 3), dtype=np.float32), {}


def main():
    os.makedirs(OUT, exist_ok=True)
    manifest = []
    for name, arr, kw in cases():
        path = os.path.join(OUT, name + ".npy")
        with open(path, "wb") as f:
            npformat.write_array(f, arr, allow_pickle=False, **kw)
        back = np.load(path)
        assert back.dtype == arr.dtype and np.array_equal(back, arr)
        with open(path, "rb") as f:
            version = list(npformat.read_magic(f))
        manifest.append({
            "file": name + ".npy",
            "version": version,
            "dtype": arr.dtype.name,
            "fortran_order": bool(np.isfortran(arr)),
            "shape": list(arr.shape),
            "values": arr.ravel(order="C").tolist(),
        })
    with open(os.path.join(HERE, "fixtures.json"), "w") as f:
        f.write("[\n" + ",\n".join(json.dumps(m) for m in manifest) + "\n]\n")


if __name__ == "__main__":
    main()
