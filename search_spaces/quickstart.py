"""quickstart: gansweep's default grid: baseline vs GAN augmentation vs GAN distillation, with the
compute-matched control, on Fashion-MNIST at 20% with LeNet.

LeNet is DeGAN's Fashion-MNIST teacher; it trains at thousands of images/s on one CPU core, which leaves
`make run`'s 15-minute budget (install included) to the GANs. One LeNet column: with LeNet-half beside
it (the earlier grid), the converging budget with 3 seeds took about twice `make run`'s budget here
(measured per seed on a 20,000-image pool: baselines 45 s, GAN 113 s, augmentation 143-221 s and
distillation ~16-30 s per epoch, two trials on two cores).
"""

from harness import metrics as M
from harness.gan_train import GANConfig
from search_spaces import SUBSTITUTE, Cell, Claim, Gain, Table, register_claims, register_table
from search_spaces.pennisi2021 import CONVERGE

# Fashion-MNIST is 28x28 greyscale: 2 px of crop padding keeps the garment inside the frame.
COMMON = {"crop_padding": 2, "flip": True}
PROFILES = {
    "smoke": {**COMMON, "optimizer": "adam", "lr": 1e-3, "batch_size": 64, "epochs": 2,
              "max_batches_per_epoch": 8, "max_eval_images": 512, "train_pool": 20000, "patience": 1,
              "gan": GANConfig(arch="dcgan_small", batch_size=32, beta1=0.5, epochs=2, max_batches_per_epoch=4,
                               patience=1, fid_images=100, fid_model="lenet"),
              "distill_epochs": 2, "fid_images": 100, "split_images": 512},
    # mini: ~10 minutes of trials on 2 cores (the small DCGAN trains at ~900 images/s on one core at
    # 28x28). With 5 distillation epochs `make run` took 14 min 10 s here, install included: 3 keep
    # it inside its 15-minute budget.
    "mini": {**COMMON, "optimizer": "adam", "lr": 1e-3, "batch_size": 128, "epochs": 15,
             "gan": GANConfig(arch="dcgan_small", batch_size=64, beta1=0.5, epochs=8),
             "distill_epochs": 3, "fid_images": 500},
    # converge: Pennisi's converging budget (search_spaces/pennisi2021.py), whose substituted dataset and
    # backbone are the quickstart's own: each stage until its validation signal is flat, on a fixed
    # 10,000-image pool of Fashion-MNIST (2,000 training images per cell at 20%), no augmentation.
    "converge": {k: v for k, v in CONVERGE.items() if k != SUBSTITUTE},
    "paper": {**COMMON, "optimizer": "adam", "lr": 1e-4, "batch_size": 512, "epochs": 200,
              "gan": GANConfig(arch="biggan", epochs=600), "distill_epochs": 250},
}

MATCHED = "Baseline, compute-matched"  # stage 1 continued on real data for stage 3's steps (see pennisi2021.py)
METHODS = {"Baseline": "baseline", "GAN augmentation": "gan_augmentation", "GAN distillation": "gan_distillation"}

register_table(Table(
    name="quickstart",
    paper="gansweep",
    title="Quickstart: Fashion-MNIST at 20%, baseline vs GAN augmentation vs GAN distillation",
    dataset="fashion_mnist",
    metric=M.TEST_ACC_AT_BEST_VAL_ACC,
    cells=tuple(Cell(row, "LeNet", method, {"model": "lenet", "fraction": 0.2}) for row, method in METHODS.items())
    + (Cell(MATCHED, "LeNet", "gan_distillation", {"model": "lenet", "fraction": 0.2, "fake_source": "none"}),),
    profiles=PROFILES,
    gains=(Gain("Gain: GAN augmentation", "GAN augmentation", "Baseline", {}),
           Gain("Gain: GAN distillation", "GAN distillation", "Baseline", {}),
           Gain("Gain over compute-matched", "GAN distillation", MATCHED, {})),
))

register_claims("gansweep", [
    Claim("GAN distillation beats the baseline", "quickstart", better=("GAN distillation",), worse=("Baseline",), ours=True),
    Claim("GAN augmentation beats the baseline", "quickstart", better=("GAN augmentation",), worse=("Baseline",), ours=True),
    Claim("GAN distillation beats the baseline trained as many more steps on real data", "quickstart",
          better=("GAN distillation",), worse=(MATCHED,), ours=True),
])
