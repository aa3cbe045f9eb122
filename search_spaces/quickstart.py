"""quickstart: gansweep's default grid: baseline vs GAN augmentation vs GAN distillation on
Fashion-MNIST at 20%, for two classifiers.

LeNet and LeNet-half are DeGAN's Fashion-MNIST teacher and student. Both train at thousands of
images/s on one CPU core, which leaves `make run`'s 15-minute budget (install included) to the GANs
(AlexNet-half took ~70 s per epoch per trial here, 2 trials on 2 cores: too slow for a first run).
One GAN per seed serves all four GAN cells (the stage cache keys it on the subset, not the classifier).
"""

from harness import metrics as M
from harness.gan_train import GANConfig
from search_spaces import Cell, Gain, Table, register_table

# Fashion-MNIST is 28x28 greyscale: 2 px of crop padding keeps the garment inside the frame.
COMMON = {"crop_padding": 2, "flip": True}
PROFILES = {
    "smoke": {**COMMON, "optimizer": "adam", "lr": 1e-3, "batch_size": 64, "epochs": 2,
              "max_batches_per_epoch": 8, "max_eval_images": 512,
              "gan": GANConfig(arch="dcgan_small", batch_size=32, beta1=0.5, epochs=1, max_batches_per_epoch=4),
              "distill_epochs": 2, "fid_images": 100, "split_images": 512},
    # mini: ~10 minutes of trials on 2 cores (the small DCGAN trains at ~900 images/s on one core at
    # 28x28). With 5 distillation epochs `make run` took 14 min 10 s here, install included: 3 keep
    # it inside its 15-minute budget.
    "mini": {**COMMON, "optimizer": "adam", "lr": 1e-3, "batch_size": 128, "epochs": 15,
             "gan": GANConfig(arch="dcgan_small", batch_size=64, beta1=0.5, epochs=8),
             "distill_epochs": 3, "fid_images": 500},
    "paper": {**COMMON, "optimizer": "adam", "lr": 1e-4, "batch_size": 512, "epochs": 200,
              "gan": GANConfig(arch="biggan", epochs=600), "distill_epochs": 250},
}

METHODS = {"Baseline": "baseline", "GAN augmentation": "gan_augmentation", "GAN distillation": "gan_distillation"}

register_table(Table(
    name="quickstart",
    paper="gansweep",
    title="Quickstart: Fashion-MNIST at 20%, baseline vs GAN augmentation vs GAN distillation",
    dataset="fashion_mnist",
    metric=M.TEST_ACC_AT_BEST_VAL_ACC,
    cells=tuple(Cell(row, model, method, {"model": model, "fraction": 0.2})
                for row, method in METHODS.items() for model in ("lenet", "lenet_half")),
    profiles=PROFILES,
    gains=(Gain("Gain: GAN augmentation", "GAN augmentation", "Baseline", {}),
           Gain("Gain: GAN distillation", "GAN distillation", "Baseline", {})),
))
