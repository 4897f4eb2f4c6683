"""Writes the device check's small CIFAR-10 JPEG set: the first 30 training and 10 test images of each
class (what the ci-smoke config reads) from the shared cifar10-jpg archives, as archives of the same
layout (cifar10-jpg-{train,test}.tar.gz) that --data-dir reads.

    python3 bench/gpu_check_data.py OUT_DIR [SOURCE_DIR]   # SOURCE_DIR: ../shared/data/cifar10-jpg
"""
import collections
import os
import sys
import tarfile

PER_CLASS = {"train": 30, "test": 10}


def main():
    out = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    src = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "..", "shared", "data", "cifar10-jpg")
    if not os.path.isdir(src) and os.path.isdir("/work/shared/data/cifar10-jpg"):
        src = "/work/shared/data/cifar10-jpg"
    os.makedirs(out, exist_ok=True)
    for split, limit in PER_CLASS.items():
        archive = os.path.join(src, f"cifar10-jpg-{split}.tar.gz")
        if not os.path.exists(archive):
            sys.exit(f"gpu_check_data.py: {archive} is missing; pass the folder holding cifar10-jpg-{{train,test}}.tar.gz")
        kept = collections.Counter()
        with tarfile.open(archive) as tin, tarfile.open(os.path.join(out, f"cifar10-jpg-{split}.tar.gz"), "w:gz") as tout:
            for m in tin:
                parts = m.name.strip("/").split("/")
                if m.isfile() and len(parts) == 3 and kept[parts[1]] < limit:
                    kept[parts[1]] += 1
                    tout.addfile(m, tin.extractfile(m))
        print(f"{split}: {sum(kept.values())} images in {len(kept)} classes")


if __name__ == "__main__":
    main()
