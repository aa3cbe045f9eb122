"""The in-memory batch path vs torchvision Dataset + DataLoader with PIL transforms.

Same model (alexnet), same data (CIFAR-10 JPEG, 20% of the train set), same augmentation (4 px
reflect-padded random crop, horizontal flip), one epoch each; prints images/s of both and the ratio
(target: in-memory >= 2x). It also times each data path alone (no model), which shows what the
data path costs where the model is fast (a GPU).

    .venv/bin/python bench/batch_path.py [--data-root data] [--threads 2] [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision.transforms as T
from torch.utils.data import DataLoader, Subset
from torchvision.datasets import ImageFolder

from harness.data import batches, default_root, load_images, make_split, tensor_cache
from harness.models import build_classifier

FRACTION, VAL_FRACTION, SEED, BATCH = 0.2, 0.1, 0, 128


def train_one_epoch(model, opt, batch_iter) -> int:
    model.train()
    n = 0
    for xb, yb in batch_iter:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(xb), yb).backward()
        opt.step()
        n += len(yb)
    return n


def timed(fn) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = fn()
    return time.perf_counter() - t0, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=default_root())
    parser.add_argument("--threads", type=int, default=2, help="torch threads (both sides)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    cache = Path(tempfile.gettempdir()) / "gansweep-bench-cache"
    images = load_images(tensor_cache("cifar10", args.data_root, cache))
    split = make_split(images.train_y, FRACTION, VAL_FRACTION, SEED)
    x, y = images.train_x[split.train], images.train_y[split.train]

    # torchvision's way: decode each JPEG per epoch, PIL transforms per image, collate per batch.
    folder = ImageFolder(str(args.data_root / "cifar10-jpeg" / "train"), transform=T.Compose([
        T.RandomCrop(32, padding=4, padding_mode="reflect"), T.RandomHorizontalFlip(), T.ToTensor(),
        T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]))  # -> [-1, 1], as our path
    assert folder.targets == images.train_y.tolist(), "ImageFolder order differs from the tensor cache"
    loader = DataLoader(Subset(folder, split.train.tolist()), batch_size=BATCH, shuffle=True,
                        num_workers=args.workers, persistent_workers=False)

    def ours():
        return batches(x, y, BATCH, torch.Generator().manual_seed(SEED), crop_padding=4, flip=True)

    print(f"CIFAR-10 (jpeg q75), {len(y)} training images (20%), batch {BATCH}, torch threads {args.threads}, "
          f"DataLoader workers {args.workers}")
    data_ours, n1 = timed(lambda: sum(len(yb) for _, yb in ours()))
    data_tv, n2 = timed(lambda: sum(len(yb) for _, yb in loader))
    print(f"data path alone : in-memory {n1 / data_ours:9.0f} img/s | DataLoader+PIL {n2 / data_tv:9.0f} img/s"
          f" | ratio {data_tv / data_ours:6.2f}x")

    results = {}
    for name, make in (("in-memory", ours), ("DataLoader+PIL", lambda: loader)):
        torch.manual_seed(SEED)
        model = build_classifier("alexnet", 3, 32, 10)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        seconds, n = timed(lambda: train_one_epoch(model, opt, make()))
        results[name] = n / seconds
    ratio = results["in-memory"] / results["DataLoader+PIL"]
    print(f"alexnet, 1 epoch: in-memory {results['in-memory']:9.0f} img/s | DataLoader+PIL "
          f"{results['DataLoader+PIL']:9.0f} img/s | ratio {ratio:6.2f}x (target >= 2x)")


if __name__ == "__main__":
    main()
