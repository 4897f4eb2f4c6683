#!/usr/bin/python3
"""Independent safetensors reader/writer in Python (struct + json + numpy),
used because the `safetensors` package is not installable here. It follows
the reference Rust writer: compact JSON, __metadata__ first, tensors ordered
by dtype (enum order, descending) then name, header padded with spaces to a
multiple of 8.

usage:
  st_py.py gen                    rewrite python.safetensors (committed fixture)
  st_py.py write OUT              write the same tensors to OUT
  st_py.py check FILE MANIFEST    strictly read FILE and compare with MANIFEST
"""
import json
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

# name -> (numpy dtype used to view the bytes, rank in the Rust Dtype enum)
DTYPES = {
    "BOOL": ("|b1", 0), "U8": ("|u1", 4), "I8": ("|i1", 5),
    "F8_E5M2": ("|u1", 6), "F8_E4M3": ("|u1", 7),
    "I16": ("<i2", 11), "U16": ("<u2", 12), "F16": ("<f2", 13), "BF16": ("<u2", 14),
    "I32": ("<i4", 15), "U32": ("<u4", 16), "F32": ("<f4", 17),
    "F64": ("<f8", 19), "I64": ("<i8", 20), "U64": ("<u8", 21),
}


def bf16(values):
    """float32 -> bf16 bits with round-to-nearest-even (as torch does)."""
    b = np.asarray(values, dtype="<f4").view("<u4").astype(np.uint64)
    b = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
    return b.astype("<u2")


def fixture_tensors():
    return {
        "weight": ("F32", np.array([0.0, -1.5, 3.25, 1e-7, 65504.0, -0.0], "<f4").reshape(2, 3)),
        "bias": ("F64", np.array([1e300, -2.5e-300, np.pi], "<f8")),
        "ids": ("I64", np.array([2**63 - 1, -(2**63), 0, -1], "<i8").reshape(2, 2)),
        "idx32": ("I32", np.array([2**31 - 1, -(2**31), 7, -7], "<i4")),
        "mask": ("BOOL", np.array([True, False, False, True, True])),
        "bytes": ("U8", np.arange(0, 256, 32, dtype="|u1").reshape(2, 2, 2)),
        "half": ("F16", np.array([1.0, -2.0, 65504.0, 6e-8], "<f2")),
        "brain": ("BF16", bf16([1.0, -3.140625, 1e30])),
        "scalar": ("F32", np.array(2.5, "<f4")),
        "empty": ("F32", np.zeros((0, 4), "<f4")),
    }


FIXTURE_METADATA = {"format": "pt", "note": "h\u00e9llo <&> \"quoted\""}


def save(path, tensors, metadata=None):
    names = sorted(tensors, key=lambda n: (-DTYPES[tensors[n][0]][1], n))
    header = {}
    if metadata:
        header["__metadata__"] = dict(sorted(metadata.items()))
    blobs, off = [], 0
    for n in names:
        dtype, arr = tensors[n]
        data = np.ascontiguousarray(arr).astype(DTYPES[dtype][0], copy=False).tobytes()
        header[n] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def no_dupes(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate keys %r" % keys)
    return dict(pairs)


def load(path):
    """Strict reader: returns ({name: (dtype, shape, bytes)}, metadata, raw header)."""
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    assert 8 + n <= len(buf), "header length past end of file"
    raw = buf[8:8 + n]
    hdr = json.loads(raw.decode("utf-8"), object_pairs_hook=no_dupes)
    metadata = hdr.pop("__metadata__", None)
    data = buf[8 + n:]
    out, end = {}, 0
    for name, info in sorted(hdr.items(), key=lambda kv: kv[1]["data_offsets"]):
        b, e = info["data_offsets"]
        assert b == end, "%s: gap or overlap at %d" % (name, b)
        npdt = np.dtype(DTYPES[info["dtype"]][0])
        assert e - b == npdt.itemsize * int(np.prod(info["shape"], dtype=np.int64)), name
        out[name] = (info["dtype"], info["shape"], data[b:e])
        end = e
    assert end == len(data), "data section %d bytes, tensors cover %d" % (len(data), end)
    return out, metadata, raw


def check(path, manifest_path):
    with open(manifest_path) as f:
        manifest = json.load(f)
    tensors, metadata, raw = load(path)
    errs = []
    if len(raw) % 8:
        errs.append("header length %d not a multiple of 8" % len(raw))
    if raw.rstrip(b" ") != raw.rstrip() or not raw.rstrip(b" ").endswith(b"}"):
        errs.append("header padding is not trailing spaces")
    if (metadata or {}) != manifest["metadata"]:
        errs.append("metadata %r, want %r" % (metadata, manifest["metadata"]))
    if set(tensors) != set(manifest["tensors"]):
        errs.append("names %r, want %r" % (sorted(tensors), sorted(manifest["tensors"])))
    for name, want in manifest["tensors"].items():
        if name not in tensors:
            continue
        dtype, shape, data = tensors[name]
        if dtype != want["dtype"] or shape != want["shape"]:
            errs.append("%s: %s%r, want %s%r" % (name, dtype, shape, want["dtype"], want["shape"]))
            continue
        if data.hex() != want["hex"]:
            errs.append("%s: bytes differ" % name)
        a = np.frombuffer(data, DTYPES[dtype][0])
        if dtype == "BF16":
            a = (a.astype("<u4") << 16).view("<f4")
        if "values" in want:
            got = a.astype(np.float64 if a.dtype.kind == "f" else object).tolist()
            got = [bool(x) if dtype == "BOOL" else x for x in got]
            if got != want["values"]:
                errs.append("%s: values %r, want %r" % (name, got, want["values"]))
    # Every tensor should start aligned to its element size, as the
    # reference writer's ordering guarantees.
    hdr = json.loads(raw)
    for name, info in hdr.items():
        if name == "__metadata__":
            continue
        size = np.dtype(DTYPES[info["dtype"]][0]).itemsize
        if (8 + len(raw) + info["data_offsets"][0]) % size:
            errs.append("%s: data not %d-byte aligned" % (name, size))
    if errs:
        print("\n".join(errs))
        sys.exit(1)
    print("python/numpy %s read %d tensors OK" % (np.__version__, len(tensors)))


def main():
    cmd = sys.argv[1]
    if cmd == "gen":
        save(os.path.join(HERE, "python.safetensors"), fixture_tensors(), FIXTURE_METADATA)
    elif cmd == "write":
        save(sys.argv[2], fixture_tensors(), FIXTURE_METADATA)
    elif cmd == "check":
        check(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
