"""CIFAR-10's 60,000 JPEGs decoded by PIL with a convert("RGB") per file (as before 2026-12-02) and by
harness.data._decode (no convert of an RGB image): both times, the ratio, and whether the pixels agree.

    .venv/bin/python bench/decode.py [--root data]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

from harness import data


def pil(samples):
    out = []
    for path, _ in samples:
        with Image.open(path) as im:
            out.append(np.asarray(im.convert("RGB")))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("GANSWEEP_DATA", "data")))
    folder = parser.parse_args().root / "cifar10-jpeg"
    classes, train, _ = data._scan(folder / "train")
    _, test, _ = data._scan(folder / "test", classes)
    samples = train + test
    for path, _ in samples:  # the files into the page cache, for both sides alike (reading, not decoding)
        Path(path).read_bytes()
    start = time.perf_counter()
    ours, _ = data._decode(samples, None, None)
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    theirs = pil(samples)
    t_pil = time.perf_counter() - start
    same = all(np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))
    print(f"{len(samples)} JPEGs: PIL {t_pil:.1f} s, harness.data._decode {t_ours:.1f} s, "
          f"ratio {t_ours / t_pil:.2f}; identical pixels: {same}")


if __name__ == "__main__":
    main()
