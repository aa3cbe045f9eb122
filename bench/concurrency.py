"""Trials side by side on this machine: two concurrent trials vs the same two one after the other, and
Ray's per-trial overhead for short trials vs the same work in a bare PyTorch loop.

1. Throughput: two quickstart baseline trials (LeNet, Fashion-MNIST 20%, mini budget, seeds 0 and 1,
   1 CPU and 1 torch thread each) run concurrently through `harness.launch.run`, vs the same two run
   one after the other. Prints both wall times, images/s and the ratio (target >= 1.5x on 2 cores).
2. Overhead: 8 trials of one tiny epoch (the smoke budget) through `harness.launch.run`, 1 CPU each
   (so as many at once as the machine has cores), vs the same 8 trainings in a bare loop in this
   process (1 thread, one after the other). Prints both, the ratio, and the overhead per trial in
   slot-seconds: (Ray wall x slots - bare wall) / trials.

Both sides join one Ray started beforehand (a local node with this machine's cores), so Ray's own
start (~10 s) is paid by neither; each `launch.run` still pays the driver's connection, the data check,
trial start-up (a fresh worker process importing torch), per-epoch checkpoints and the results table.
The dataset is decoded once, before any timing. The machine may be shared: run it when it is quiet.

    .venv/bin/python bench/concurrency.py [--data-root data] [--epochs 5] [--short-trials 8]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

TABLE = "quickstart"


def lenet_trials(profile: str, seeds: int, epochs: int | None = None):
    from search_spaces import plan

    trials = [t for t in plan([TABLE], profile, seeds=seeds, methods=["baseline"]) if t.cell.col == "lenet"]
    if epochs:
        trials = [dataclasses.replace(t, config=dataclasses.replace(t.config, epochs=epochs)) for t in trials]
    return trials


def timed_run(trials, profile: str, data_root: Path, out: Path, shared_data: Path, address: str):
    """Wall seconds of one `launch.run` of ``trials`` and the images they trained on."""
    from harness import launch

    (out / "cache").mkdir(parents=True)
    (out / "cache" / "data").symlink_to(shared_data, target_is_directory=True)  # decoded once, beforehand
    t0 = time.perf_counter()
    rows = launch.run(trials, [TABLE], profile, data_root, out, launch.Resources(cpus_per_trial=1, address=address),
                      verbose=0)
    wall = time.perf_counter() - t0
    assert rows is not None and set(rows["status"]) == {"ok"}, rows
    return wall, int(rows["images_seen"].sum())


def bare(trials, data_file: Path) -> float:
    """The trials' training in plain PyTorch, one after the other on 1 thread: tensors in memory, Adam,
    crop+flip, validation and test each epoch. Returns wall seconds."""
    import torch
    import torch.nn.functional as F

    from harness.data import augment, load_images, make_split, to_float
    from harness.models import build_classifier
    from harness.train import eval_subset

    torch.set_num_threads(1)
    images = load_images(data_file)
    t0 = time.perf_counter()
    for t in trials:
        cfg = t.config
        split = make_split(images.train_y, cfg.fraction, cfg.val_fraction, cfg.seed)
        x, y = images.train_x[split.train], images.train_y[split.train]
        evals = (eval_subset(images.train_x[split.val], images.train_y[split.val], cfg),
                 eval_subset(images.test_x, images.test_y, cfg))
        g = torch.Generator().manual_seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        model = build_classifier(cfg.model, *images.shape[:2], len(images.classes))
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        for _ in range(cfg.epochs):
            model.train()
            order = torch.randperm(len(y), generator=g)
            steps = range(0, len(y), cfg.batch_size)
            for i in steps[:cfg.max_batches_per_epoch or len(steps)]:
                idx = order[i:i + cfg.batch_size]
                opt.zero_grad()
                F.cross_entropy(model(augment(to_float(x[idx]), cfg.crop_padding, cfg.flip, g)), y[idx]).backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                for ex, ey in evals:
                    sum((model(to_float(ex[i:i + 1024])).argmax(1) == ey[i:i + 1024]).sum().item()
                        for i in range(0, len(ey), 1024))
    return time.perf_counter() - t0


def main() -> None:
    from harness.data import default_root

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=default_root())
    parser.add_argument("--epochs", type=int, default=5, help="epochs of the two throughput trials (mini: 15)")
    parser.add_argument("--short-trials", type=int, default=8, help="number of one-epoch trials")
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a loopback-only node of our own
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    from ray.cluster_utils import Cluster

    from harness.data import tensor_cache

    slots = os.cpu_count()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": slots, "include_dashboard": False})
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            data_file = tensor_cache("fashion_mnist", args.data_root.resolve(), tmp / "data")
            run = lambda trials, profile, name: timed_run(trials, profile, args.data_root.resolve(), tmp / name,
                                                          tmp / "data", cluster.address)

            pair = lenet_trials("mini", 2, args.epochs)
            one_by_one = [run([t], "mini", f"seq{i}") for i, t in enumerate(pair)]
            seq_wall, seq_images = sum(w for w, _ in one_by_one), sum(n for _, n in one_by_one)
            conc_wall, conc_images = run(pair, "mini", "concurrent")
            assert seq_images == conc_images

            short = lenet_trials("smoke", args.short_trials, epochs=1)
            ray_wall, _ = run(short, "smoke", "short")
            bare_wall = bare(short, data_file)
    finally:
        cluster.shutdown()

    cfg = pair[0].config
    print(f"1. {TABLE} baseline lenet, mini budget ({cfg.epochs} epochs of batch {cfg.batch_size}), 2 trials, "
          f"1 CPU each, on {slots} cores")
    print(f"one after the other {seq_wall:7.1f} s ({seq_images / seq_wall:6.0f} images/s) | concurrently "
          f"{conc_wall:7.1f} s ({conc_images / conc_wall:6.0f} images/s) | ratio {seq_wall / conc_wall:5.2f}x "
          f"(target >= 1.5x)")
    s = short[0].config
    print(f"2. {len(short)} trials of 1 tiny epoch ({s.max_batches_per_epoch} steps of {s.batch_size}, "
          f"{s.max_eval_images} eval images), 1 CPU each, {slots} at a time")
    print(f"bare loop (1 thread, one after the other) {bare_wall:6.1f} s | launch.run {ray_wall:6.1f} s | ratio "
          f"{ray_wall / bare_wall:5.2f}x | overhead per trial {(ray_wall * slots - bare_wall) / len(short):5.1f} "
          f"slot-s (bare: {bare_wall / len(short):4.2f} s per trial)")


if __name__ == "__main__":
    main()
