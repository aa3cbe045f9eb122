"""Pennisi, Palazzo, Spampinato 2021: Self-improving classification performance through GAN
distillation (shared/papers/pennisi2021-gan-distillation.txt).

CIFAR-10; 10% of the official train set is always held out for validation (Sec. 4.1).
"""

from harness import metrics as M
from search_spaces import Cell, Table, register_table

# Sec. 4.1: "Classifier C is pre-trained using a batch size of 512 and a learning rate of 1e-4, Adam
# is used as optimizer with default hyperparameters. Training is carried out for 200 epochs."
PAPER = {"optimizer": "adam", "lr": 1e-4, "batch_size": 512, "epochs": 200}
# mini: a 2-core CPU. AlexNet (DeGAN's, with LRN) trains at about 160 images/s per core on 32x32
# (bench/), so a few epochs at a higher learning rate and smaller batches are what fits in an hour.
MINI = {"optimizer": "adam", "lr": 1e-3, "batch_size": 128, "epochs": 4}
# smoke: seconds. NOTE: 4 steps of 32 left AlexNet's BatchNorm running statistics unsettled and
# the test accuracy at chance (seen: 8.8% mean); 16 steps of 64 give a signal above chance.
SMOKE = {"optimizer": "adam", "lr": 1e-3, "batch_size": 64, "epochs": 1, "max_batches_per_epoch": 16,
         "max_eval_images": 512}
PROFILES = {"smoke": SMOKE, "mini": MINI, "paper": PAPER}

# Table 2: AlexNet, Baseline vs GAN distillation as the train fraction grows; "Results are taken at
# the highest validation accuracy". The extracted table is garbled: only 40% (77.12 -> 82.70) and
# 90% (83.60 -> 86.46) keep their absolute values; 30/50/60% are kept as not reported. The gains row
# (+5.12 +5.58 +4.87 +3.84 +2.86) and the GAN distillation row belong to the distillation issue.
TABLE2_BASELINE = {"30%": None, "40%": 77.12, "50%": None, "60%": None, "90%": 83.60}

register_table(Table(
    name="pennisi2021.table2",
    paper="pennisi2021",
    title="Table 2: AlexNet on CIFAR-10, accuracy vs % of the training set",
    dataset="cifar10",
    metric=M.TEST_ACC_AT_BEST_VAL_ACC,
    cells=tuple(Cell("Baseline", col, "baseline", {"model": "alexnet", "fraction": int(col[:-1]) / 100},
                     paper) for col, paper in TABLE2_BASELINE.items()),
    profiles=PROFILES,
    notes="Paper cells 30%, 50% and 60% are garbled in the extracted text: not reported.",
))
