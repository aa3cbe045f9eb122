"""Pennisi Table 4 (five p_r cells of GAN distillation) with the stage cache vs without it.

With the cache, the five cells share one pre-trained classifier, one hard/easy split and one
pre-trained GAN; without it (GANSWEEP_PRIVATE_STAGES=1), every trial computes its own. Same trials,
same resources, same profile; prints both wall times and the ratio (target <= 0.5x).

    .venv/bin/python bench/stage_cache.py [--profile smoke] [--data-root data] [--keep DIR]
"""

from __future__ import annotations

import argparse
import itertools
import json
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
            if side == "with cache":
                trials = _trial_seconds(out)
    print(f"{TABLE} at {args.profile}, 1 seed: with cache {walls['with cache']:.1f} s | without "
          f"{walls['without cache']:.1f} s | ratio {walls['with cache'] / walls['without cache']:.2f}x (target <= 0.5x)")
    slots = os.cpu_count()
    best = _best_makespan(trials, slots)
    print(f"with cache, its {len(trials)} trials ({', '.join(f'{t:.0f}' for t in trials)} s each, stages included) "
          f"packed at best on {slots} slots: {best:.1f} s, ratio {best / walls['without cache']:.2f}x: the best any "
          f"order of whole trials gives, the driver's start-up and decoding left out (a trial's seconds include any "
          f"wait on another's stage lock)")


def _trial_seconds(out: Path) -> list[float]:
    """Each trial's own seconds (Tune's time_total_s of its last report: its stages, epochs and restarts)."""
    seconds = []
    for result in sorted(out.glob("tune/*/*/result.json")):
        lines = [line for line in result.read_text().splitlines() if line.strip()]
        seconds.append(json.loads(lines[-1])["time_total_s"])
    return seconds


def _best_makespan(jobs: list[float], slots: int) -> float:
    """The shortest time in which ``slots`` workers finish indivisible jobs of these lengths: exact over every
    assignment for two slots (a few trials), else the longest-first greedy bound."""
    if slots == 2 and len(jobs) <= 20:
        total = sum(jobs)
        return min(max(sum(c), total - sum(c)) for n in range(len(jobs) + 1)
                   for c in itertools.combinations(jobs, n))
    loads = [0.0] * slots
    for job in sorted(jobs, reverse=True):
        loads[loads.index(min(loads))] += job
    return max(loads)


if __name__ == "__main__":
    main()
