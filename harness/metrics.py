"""Metric names, defined once: trainables report them, results store them, reports read them."""

# Per epoch
EPOCH = "epoch"
TRAIN_LOSS = "train_loss"
TRAIN_ACC = "train_acc"  # % on the augmented training batches
VAL_LOSS = "val_loss"
VAL_ACC = "val_acc"  # %
TEST_LOSS = "test_loss"
TEST_ACC = "test_acc"  # %

# Final: the papers select the model differently. Pennisi selects the pre-trained classifier at the
# lowest validation loss (Sec. 4.1) but reports Tables 1-4 "at the training epoch yielding the
# highest validation accuracy"; we report both.
TEST_ACC_AT_BEST_VAL_LOSS = "test_acc_at_best_val_loss"
TEST_ACC_AT_BEST_VAL_ACC = "test_acc_at_best_val_acc"
TEST_ERR_AT_BEST_VAL_ACC = "test_err_at_best_val_acc"  # 100 - the above: Pham 2019's "Error (%)"
BEST_VAL_LOSS = "best_val_loss"
BEST_VAL_ACC = "best_val_acc"
BEST_VAL_LOSS_EPOCH = "best_val_loss_epoch"
BEST_VAL_ACC_EPOCH = "best_val_acc_epoch"
DIVERGED = "diverged"  # 1 when a loss became NaN/inf and the trial stopped early
DONE_EPOCHS = "done_epochs"
# 1 on a trial's last report: it ran its planned epochs, or early stopping ended it (its validation signal
# stopped improving for ``patience`` epochs). A trial without it was interrupted (or is still running).
COMPLETE = "complete"
STOPPED_EARLY = "stopped_early"  # 1 when early stopping ended the last training stage before its maximum
RESTARTS = "restarts"  # times the trial resumed from its checkpoint after its worker died

# GAN distillation, per epoch and final (Pennisi Fig. 3, Table 5)
FID_CLASSIFIER = "fid_classifier"  # FID in the stage-1 classifier's feature space (always available)
FID_INCEPTION = "fid_inception"  # FID with torch-fidelity's Inception weights (None when absent)
IS_MEAN = "is_mean"  # Inception Score, mean over 10 splits
IS_STD = "is_std"
KID_MEAN = "kid_mean"  # Kernel Inception Distance, mean over 100 subsets
KID_STD = "kid_std"
METRIC_MISSING_REASON = "metric_missing_reason"  # why the Inception metrics are missing
# The stage-2 GAN after pre-training, before distillation (Pennisi Sec. 4.2: "we achieve a FID of 20.05")
FID_PRETRAINED_CLASSIFIER = "fid_pretrained_classifier"  # vs the validation split, stage-1 classifier's features
FID_PRETRAINED_INCEPTION = "fid_pretrained_inception"  # torch-fidelity's Inception FID (NaN without weights)
SNAPSHOT_EPOCH = "snapshot_epoch"  # Table 5: the distillation epoch of the pre-collapse generator sampled
SNAPSHOT_RUN_COLLAPSE_EPOCH = "snapshot_run_collapse_epoch"  # the epoch that run collapsed at (-1: never)
DIVERSITY_RATIO = "diversity_ratio"  # generated / real mean intra-class pairwise distance
COLLAPSE_EPOCH = "collapse_epoch"  # first epoch whose diversity ratio fell below the threshold (-1: none)
DIST_LOSS = "dist_loss"  # the triplet (distillation) loss, mean over the GAN epoch
D_LOSS = "d_loss"
G_LOSS = "g_loss"
HARD_FRACTION = "hard_fraction"  # share of the training subset labelled hard
CLASSES_WITHOUT_TRIPLET = "classes_without_triplet"  # classes lacking a hard or an easy sample

# Training from generated images only (Pham 2019, Slim 2020): sizes, and the filter's counts (harness.synthetic)
GENERATOR_MB = "generator_mb"  # the generators' parameters at 4 bytes, MB = 1e6 bytes (Pham Table I "Size (MB)")
REAL_DATA_MB = "real_data_mb"  # the real training subset's uint8 pixels, MB
SOURCE_MB = "source_mb"  # what the classifier learnt from: the generators' MB, or the real subset's (baseline)
# Intra-class diversity (Slim 2020, Sec. 4.3, Tables 2 and 4; harness.synthetic.diversity_metrics): MS-SSIM x 100
# of random same-class pairs, averaged per class; higher is *less* diverse. Of what the classifier learnt from,
# as SOURCE_MB: the generators' images (unfiltered, as sampled), or the real training subset's (baseline).
MS_SSIM_MEAN = "ms_ssim_x100_mean"  # mean over classes of the per-class means
MS_SSIM_STD = "ms_ssim_x100_std"  # standard deviation over classes of the per-class means (Slim's "std")
MS_SSIM_PER_CLASS = "ms_ssim_x100_per_class"  # list: per class, the mean over its pairs
# The generators' FIDs measured on real training images instead (generator-only methods; Slim's Table 2
# real-data row, "FID computed between the training and test sets"): what a generator reproducing its training
# set would score at the same sample sizes
REAL_FID_CLASSIFIER = "real_fid_classifier"  # as FID_CLASSIFIER: metric_images training images vs the validation split
REAL_FID_INCEPTION = "real_fid_inception"  # as FID_INCEPTION: 2,000 training images vs the 2,000 test images

# Cost
WALL_S = "wall_s"  # seconds of training, summed over restarts
DEVICE = "device"
DEVICE_NAME = "device_name"  # the GPU's name, or the CPU's model and torch's CPU kernels (harness.checkpoint.device_name)
IMAGES_SEEN = "images_seen"  # training images through the classifier (real + generated)
OPT_STEPS = "optimizer_steps"

# Provenance
SPLIT_HASH = "split_hash"

FINAL_METRICS = (TEST_ACC_AT_BEST_VAL_LOSS, TEST_ACC_AT_BEST_VAL_ACC, TEST_ERR_AT_BEST_VAL_ACC, BEST_VAL_LOSS, BEST_VAL_ACC,
                 BEST_VAL_LOSS_EPOCH, BEST_VAL_ACC_EPOCH, TEST_ACC, DIVERGED, DONE_EPOCHS, FID_CLASSIFIER,
                 FID_INCEPTION, IS_MEAN, KID_MEAN, METRIC_MISSING_REASON, DIVERSITY_RATIO, COLLAPSE_EPOCH,
                 HARD_FRACTION, CLASSES_WITHOUT_TRIPLET, FID_PRETRAINED_CLASSIFIER, FID_PRETRAINED_INCEPTION,
                 COMPLETE, STOPPED_EARLY)
STAGES_COMPUTED = "stages_computed"  # cached stages this trial computed
STAGES_REUSED = "stages_reused"  # cached stages this trial found ready (computed by another trial)
STAGES_STALE = "stages_stale"  # of those, stages computed by other code (reused with --reuse-stale-stages)

COST_METRICS = (WALL_S, DEVICE, DEVICE_NAME, IMAGES_SEEN, OPT_STEPS, RESTARTS, STAGES_COMPUTED, STAGES_REUSED, STAGES_STALE)

# Human-readable names for report headers.
LABELS = {
    TEST_ACC_AT_BEST_VAL_ACC: "test accuracy (%) at the best validation accuracy",
    TEST_ACC_AT_BEST_VAL_LOSS: "test accuracy (%) at the lowest validation loss",
    TEST_ACC: "test accuracy (%) at the last epoch",
    TEST_ERR_AT_BEST_VAL_ACC: "test error (%) at the best validation accuracy",
    GENERATOR_MB: "size of the generators (MB)",
    REAL_DATA_MB: "size of the real training subset (MB)",
    SOURCE_MB: "size of what the classifier learnt from (MB): the generators, or the real subset",
    IS_MEAN: "Inception Score (higher is better)",
    FID_INCEPTION: "FID, Inception features (lower is better)",
    FID_CLASSIFIER: "FID, the real-data classifier's features (lower is better)",
    MS_SSIM_MEAN: "intra-class MS-SSIM x100, mean over classes (lower is more diverse)",
    MS_SSIM_STD: "intra-class MS-SSIM x100, standard deviation over classes",
    REAL_FID_CLASSIFIER: "FID of real training images, the real-data classifier's features",
    REAL_FID_INCEPTION: "FID of real training images vs test images, Inception features",
}

# Classification Accuracy Score (Ravuri & Vinyals 2019; harness.cas): a classifier of the real-data classifier's
# config trained on one generated image per real training image (the subset's labels; unfiltered, untruncated),
# selected on the real validation split, tested on the real test set; measured per GAN stage of a trial.
CAS = "cas"  # %, the mean over the trial's GANs of each one's CAS (test accuracy at the best validation accuracy)
CAS_PER_GAN = "cas_per_gan"  # list: per GAN, in the trial's order (multi_gan: GAN 0, 1, ...)
CAS_REAL = "cas_real"  # %, the real-data classifier's test accuracy at the best validation accuracy (same split)
CAS_GAP = "cas_gap"  # points, CAS_REAL - CAS: what training on generated images loses (lower is better)
CAS_GAP_PER_GAN = "cas_gap_per_gan"  # list: CAS_REAL - each GAN's CAS
LABELS.update({
    CAS: "Classification Accuracy Score (%): trained on generated images only, tested on real ones",
    CAS_REAL: "test accuracy (%) of the same classifier trained on the real subset",
    CAS_GAP: "CAS gap (points): real-data accuracy - CAS (lower is better)",
})

# DeGAN (Addepalli et al. 2020; trainables/degan.py): a student distilled from a frozen teacher on generated images,
# proxy images or the true training images. "The teacher's view" of what the student learns from: the teacher's
# predictions on a fixed sample of those images (the released dfgan.py prints the same per-class counts).
TEACHER_TEST_ACC = "teacher_test_acc"  # %, the frozen teacher's test accuracy (at its best validation accuracy)
PROXY_LABEL = "proxy_label"  # which proxy data, converted how (text), e.g. "cifar10 (jpeg q75), grayscale, 28x28"
PROXY_IMAGES = "proxy_images"  # proxy images the generator and the student trained on (the held-out 20% excluded)
KD_SOURCE_BALANCE = "kd_source_balance"  # %, 100 * entropy of the teacher's predicted-class histogram / log K
KD_SOURCE_HISTOGRAM = "kd_source_histogram"  # list: per class, images of that sample the teacher assigns to it
KD_SOURCE_CONFIDENT = "kd_source_confident"  # %, of that sample, images the teacher gives a probability > 0.9
KD_SOURCE_ENTROPY = "kd_source_entropy"  # nats, the mean entropy of the teacher's prediction (Eq. 4's term)
KD_SOURCE_DIVERSITY = "kd_source_diversity"  # nats, the entropy of the teacher's mean prediction (Eq. 5's term)
LABELS.update({
    KD_SOURCE_BALANCE: "class balance (%) of what the student learns from, by the teacher's predictions (100 = uniform)",
    TEACHER_TEST_ACC: "the teacher's test accuracy (%)",
})

# Class-incremental learning (Addepalli et al. 2020 Sec. 5.2, Table 3; trainables/class_incremental.py): the model
# after one incremental step, tested on every class seen (TEST_ACC_AT_BEST_VAL_ACC), and split by class group. The
# old model (the frozen teacher of the distillation) reports its test accuracy on the old classes as
# TEACHER_TEST_ACC.
TEST_ACC_OLD_CLASSES = "test_acc_old_classes"  # %, the old classes' test images, argmax over all classes seen
TEST_ACC_NEW_CLASSES = "test_acc_new_classes"  # %, the new classes' test images, argmax over all classes seen
INCREMENTAL_CLASSES = "incremental_classes"  # text: the dataset's class indices drawn as old and as new classes
LABELS.update({
    TEST_ACC_OLD_CLASSES: "test accuracy (%) on the old classes (over all classes seen)",
    TEST_ACC_NEW_CLASSES: "test accuracy (%) on the new classes (over all classes seen)",
})
