"""quickstart: gansweep's default grid, Fashion-MNIST at 20%, two classifiers.

LeNet and LeNet-half are DeGAN's Fashion-MNIST teacher and student. Both train at thousands of
images/s on one CPU core, which leaves `make run`'s 15-minute budget to the GAN methods that join
this grid in the distillation issue (AlexNet-half took ~70 s per epoch per trial here, 2 trials on
2 cores: too slow for a first run).
"""

from harness import metrics as M
from search_spaces import Cell, Table, register_table

# Fashion-MNIST is 28x28 greyscale: 2 px of crop padding keeps the garment inside the frame.
COMMON = {"crop_padding": 2, "flip": True}
PROFILES = {
    "smoke": {**COMMON, "optimizer": "adam", "lr": 1e-3, "batch_size": 64, "epochs": 2,
              "max_batches_per_epoch": 8, "max_eval_images": 512},
    # mini: about a minute of trials on 2 cores.
    "mini": {**COMMON, "optimizer": "adam", "lr": 1e-3, "batch_size": 128, "epochs": 15},
    "paper": {**COMMON, "optimizer": "adam", "lr": 1e-4, "batch_size": 512, "epochs": 200},
}

register_table(Table(
    name="quickstart",
    paper="gansweep",
    title="Quickstart: Fashion-MNIST at 20%, baseline",
    dataset="fashion_mnist",
    metric=M.TEST_ACC_AT_BEST_VAL_ACC,
    cells=tuple(Cell("Baseline", model, "baseline", {"model": model, "fraction": 0.2})
                for model in ("lenet", "lenet_half")),
    profiles=PROFILES,
))
