"""Pennisi Table 4 (five p_r cells of GAN distillation) with the stage cache vs without it.

With the cache, the five cells share one pre-trained classifier, one hard/easy split and one
pre-trained GAN; without it (GANSWEEP_PRIVATE_STAGES=1), every trial computes its own. Same trials,
same resources, same profile; prints both wall times and the ratio (target <= 0.5x).

    .venv/bin/python bench/stage_cache.py [--profile smoke] [--data-root data] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TABLE = "pennisi2021.table4"


def main() -> None:
    from harness.data import default_root

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke", help="smoke (minutes here) or mini (hours on 2 cores)")
    parser.add_argument("--data-root", type=Path, default=default_root())
    parser.add_argument("--keep", type=Path, help="keep both sides' --out folders here (else a temporary folder)")
    args = parser.parse_args()
    walls = {}
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or scratch
        for side, env in (("without cache", {"GANSWEEP_PRIVATE_STAGES": "1"}), ("with cache", {})):
            out = Path(tmp) / side.replace(" ", "-")
            # decode the dataset into the tensor cache first, so neither side pays for it
            subprocess.run([sys.executable, "-m", "harness.cli", "data", "prepare", "cifar10", "--root",
                            str(args.data_root)], check=True, capture_output=True)
            cmd = [sys.executable, "-m", "harness.cli", "run", TABLE, "--profile", args.profile, "--seeds", "1",
                   "--data-root", str(args.data_root), "--out", str(out)]
            t0 = time.perf_counter()
            done = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True)
            walls[side] = time.perf_counter() - t0
            if done.returncode:
                sys.exit(done.stdout[-2000:] + done.stderr[-2000:])
            print(f"{side:14s} {walls[side]:8.1f} s  ({[l for l in done.stdout.splitlines() if l.startswith('stages:')][0]})")
    print(f"{TABLE} at {args.profile}, 1 seed: with cache {walls['with cache']:.1f} s | without "
          f"{walls['without cache']:.1f} s | ratio {walls['with cache'] / walls['without cache']:.2f}x (target <= 0.5x)")


if __name__ == "__main__":
    main()
