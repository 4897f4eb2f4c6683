#!/usr/bin/python3
"""Used by the Go tests: loads .npy files written by Go with real numpy and
checks them against a JSON manifest. Floats are compared bit for bit (the
manifest gives their IEEE bits), so NaN and -0.0 are checked too.

usage: check.py MANIFEST.json  (paths in the manifest are relative to it)
"""
import json
import os
import sys

import numpy as np
from numpy.lib import format as npformat

BITS = {"float32": np.uint32, "float64": np.uint64}


def main():
    manifest_path = sys.argv[1]
    base = os.path.dirname(manifest_path)
    with open(manifest_path) as f:
        manifest = json.load(f)
    failures = []
    for m in manifest:
        path = os.path.join(base, m["file"])
        try:
            with open(path, "rb") as f:
                version = npformat.read_magic(f)
                if version != tuple(m["version"]):
                    raise AssertionError("version %r, want %r" % (version, m["version"]))
                # numpy aligns the data start to 64 bytes; check we do too.
                if tuple(m["version"]) == (1, 0):
                    npformat.read_array_header_1_0(f)
                else:
                    npformat.read_array_header_2_0(f)
                if f.tell() % 64:
                    raise AssertionError("data starts at %d, not 64-aligned" % f.tell())
            a = np.load(path, allow_pickle=False)
            if a.dtype.name != m["dtype"]:
                raise AssertionError("dtype %s, want %s" % (a.dtype, m["dtype"]))
            if list(a.shape) != m["shape"]:
                raise AssertionError("shape %r, want %r" % (a.shape, m["shape"]))
            if not a.flags.c_contiguous:
                raise AssertionError("not C order")
            flat = a.ravel()
            if m["dtype"] in BITS:
                got = flat.view(BITS[m["dtype"]]).tolist()
                want = m["bits"]
            else:
                got = flat.tolist()
                want = m["values"]
            if got != want:
                raise AssertionError("values %r, want %r" % (got[:20], want[:20]))
        except Exception as e:  # report every file, not just the first
            failures.append("%s: %s" % (m["file"], e))
    if failures:
        print("\n".join(failures))
        sys.exit(1)
    print("numpy %s read %d files OK" % (np.__version__, len(manifest)))


if __name__ == "__main__":
    main()
