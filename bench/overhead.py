"""`gansweep run` of one baseline cell vs a bare PyTorch loop: same model, data, epochs, threads.

The cell is Pennisi Table 3's baseline (AlexNet, CIFAR-10 JPEG, 20%) at the mini profile, seed 0,
two epochs by default (about two minutes on this 2-core CPU; the target is for cells of >= 60 s).
Each side runs in a fresh Python process, timed from start to exit, so both pay the interpreter
and torch imports; gansweep also pays Ray's start, the data check, per-epoch checkpoints and
reports, and the results table. Prints both wall times and the ratio (target <= 1.15x for a cell of
60 s or more).

    .venv/bin/python bench/overhead.py [--data-root data] [--threads 2] [--epochs N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TABLE, CELL, PROFILE = "pennisi2021.table3", "Baseline | Accuracy", "mini"


def trial(epochs: int | None):
    import dataclasses

    from search_spaces import plan

    (t,) = [t for t in plan([TABLE], PROFILE, seeds=1) if t.cell.name == CELL]
    return dataclasses.replace(t, config=dataclasses.replace(t.config, epochs=epochs)) if epochs else t


def run_gansweep(data_root: Path, out: Path, threads: int, epochs: int | None) -> None:
    from harness import launch

    t = trial(epochs)
    launch.run([t], [TABLE], PROFILE, data_root, out, launch.Resources(cpus_per_trial=threads), verbose=0)


def run_bare(data_root: Path, out: Path, threads: int, epochs: int | None) -> None:
    """The same training in plain PyTorch: tensors in memory, Adam, crop+flip, val/test each epoch."""
    import torch
    import torch.nn.functional as F

    from harness.data import augment, load_images, make_split, tensor_cache, to_float
    from harness.models import build_classifier
    from harness.train import eval_subset

    torch.set_num_threads(threads)
    cfg = trial(epochs).config
    images = load_images(tensor_cache(cfg.dataset, data_root, out / "cache" / "data"))
    split = make_split(images.train_y, cfg.fraction, cfg.val_fraction, cfg.seed)
    x, y = images.train_x[split.train], images.train_y[split.train]
    g = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    model = build_classifier(cfg.model, *images.shape[:2], len(images.classes))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.randperm(len(y), generator=g)
        steps = range(0, len(y), cfg.batch_size)
        for i in steps[:cfg.max_batches_per_epoch or len(steps)]:
            idx = order[i:i + cfg.batch_size]
            xb = augment(to_float(x[idx]), cfg.crop_padding, cfg.flip, g)
            opt.zero_grad()
            F.cross_entropy(model(xb), y[idx]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            for ex, ey in (eval_subset(images.train_x[split.val], images.train_y[split.val], cfg),
                           eval_subset(images.test_x, images.test_y, cfg)):
                acc = sum((model(to_float(ex[i:i + 1024])).argmax(1) == ey[i:i + 1024]).sum().item()
                          for i in range(0, len(ey), 1024)) / len(ey)
        print(f"bare epoch {epoch + 1}: test acc {100 * acc:.2f}", flush=True)


def main() -> None:
    from harness.data import default_root

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=default_root())
    parser.add_argument("--threads", type=int, default=2, help="torch threads = CPUs per trial")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of the cell (mini: 4)")
    parser.add_argument("--side", choices=["gansweep", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        (run_gansweep if args.side == "gansweep" else run_bare)(args.data_root, args.out, args.threads, args.epochs)
        return

    walls = {}
    with tempfile.TemporaryDirectory() as tmp:
        # Decode the dataset once beforehand, so neither side pays for it.
        subprocess.run([sys.executable, __file__, "--side", "bare", "--epochs", "1", "--out", tmp,
                        "--data-root", str(args.data_root), "--threads", str(args.threads)], check=True,
                       capture_output=True)
        for side in ("bare", "gansweep"):
            cmd = [sys.executable, __file__, "--side", side, "--out", tmp, "--data-root", str(args.data_root),
                   "--threads", str(args.threads)] + (["--epochs", str(args.epochs)] if args.epochs else [])
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            walls[side] = time.perf_counter() - t0
    epochs = trial(args.epochs).config.epochs
    print(f"{TABLE} / {CELL} / {PROFILE} ({epochs} epochs, {args.threads} threads)")
    print(f"bare PyTorch loop {walls['bare']:8.1f} s | gansweep run {walls['gansweep']:8.1f} s | "
          f"ratio {walls['gansweep'] / walls['bare']:5.3f}x (target <= 1.15x for a cell of >= 60 s)")


if __name__ == "__main__":
    main()
