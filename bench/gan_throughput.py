"""Training throughput (images/s) of the GANs beside the classifier's, on this machine.

One step = one D update and one G update on a batch of real images (GAN), or one optimiser step
(classifier); images/s counts real images. 3x32x32 (CIFAR-10), batch 64, after one warm-up step.

    .venv/bin/python bench/gan_throughput.py [--threads 2] [--steps 3]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from harness.gan_train import GANConfig, GANState, gan_epoch
from harness.models import build_classifier

BATCH = 64


def gan_rate(arch: str, steps: int) -> float:
    cfg = GANConfig(arch=arch, batch_size=BATCH, max_batches_per_epoch=steps)
    state = GANState.create(cfg, 3, 32, 10, "cpu")
    x = torch.randint(0, 256, (BATCH * (steps + 1), 3, 32, 32), dtype=torch.uint8)
    y = torch.randint(0, 10, (len(x),))
    rng = torch.Generator().manual_seed(0)
    gan_epoch(state, GANConfig(arch=arch, batch_size=BATCH, max_batches_per_epoch=1), x, y, rng)  # warm-up
    t0 = time.perf_counter()
    stats = gan_epoch(state, cfg, x, y, rng)
    return stats["images"] / (time.perf_counter() - t0)


def classifier_rate(model: str, steps: int) -> float:
    net = build_classifier(model, 3, 32, 10)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = torch.randn(BATCH, 3, 32, 32), torch.randint(0, 10, (BATCH,))
    for i in range(steps + 1):
        if i == 1:
            t0 = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    return BATCH * steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    alex = classifier_rate("alexnet", args.steps)
    print(f"3x32x32, batch {BATCH}, {args.threads} threads, {args.steps} timed steps")
    print(f"{'classifier alexnet':28s} {alex:8.1f} images/s")
    for arch in ("biggan", "biggan_small", "dcgan", "dcgan_small"):
        rate = gan_rate(arch, args.steps)
        label = "data-efficient GAN " + arch if arch.startswith("biggan") else "GAN " + arch
        print(f"{label:28s} {rate:8.1f} images/s   ({rate / alex:.2f}x the classifier's)")


if __name__ == "__main__":
    main()
