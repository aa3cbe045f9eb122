"""quickstart: gansweep's default grid, Fashion-MNIST at 20%, two classifiers.

LeNet is DeGAN's Fashion-MNIST teacher; AlexNet-half is DeGAN's CIFAR student, here to show a
larger network on the same split. The GAN methods join this grid in the distillation issue.
"""

from harness import metrics as M
from search_spaces import Cell, Table, register_table

# Fashion-MNIST is 28x28 greyscale: 2 px of crop padding keeps the garment inside the frame.
COMMON = {"crop_padding": 2, "flip": True}
PROFILES = {
    "smoke": {**COMMON, "optimizer": "adam", "lr": 1e-3, "batch_size": 64, "epochs": 2,
              "max_batches_per_epoch": 8, "max_eval_images": 512},
    # mini: ~4 minutes of trials on 2 cores (AlexNet-half trains at ~500 images/s per core).
    "mini": {**COMMON, "optimizer": "adam", "lr": 1e-3, "batch_size": 128, "epochs": 6},
    "paper": {**COMMON, "optimizer": "adam", "lr": 1e-4, "batch_size": 512, "epochs": 200},
}

register_table(Table(
    name="quickstart",
    paper="gansweep",
    title="Quickstart: Fashion-MNIST at 20%, baseline",
    dataset="fashion_mnist",
    metric=M.TEST_ACC_AT_BEST_VAL_ACC,
    cells=tuple(Cell("Baseline", model, "baseline", {"model": model, "fraction": 0.2})
                for model in ("lenet", "alexnet_half")),
    profiles=PROFILES,
))
