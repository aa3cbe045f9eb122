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
BEST_VAL_LOSS = "best_val_loss"
BEST_VAL_ACC = "best_val_acc"
BEST_VAL_LOSS_EPOCH = "best_val_loss_epoch"
BEST_VAL_ACC_EPOCH = "best_val_acc_epoch"
DIVERGED = "diverged"  # 1 when a loss became NaN/inf and the trial stopped early
DONE_EPOCHS = "done_epochs"
RESTARTS = "restarts"  # times the trial resumed from its checkpoint after its worker died

# Cost
WALL_S = "wall_s"  # seconds of training, summed over restarts
DEVICE = "device"
IMAGES_SEEN = "images_seen"  # training images through the classifier (real + generated)
OPT_STEPS = "optimizer_steps"

# Provenance
SPLIT_HASH = "split_hash"

FINAL_METRICS = (TEST_ACC_AT_BEST_VAL_LOSS, TEST_ACC_AT_BEST_VAL_ACC, BEST_VAL_LOSS, BEST_VAL_ACC,
                 BEST_VAL_LOSS_EPOCH, BEST_VAL_ACC_EPOCH, TEST_ACC, DIVERGED, DONE_EPOCHS)
STAGES_COMPUTED = "stages_computed"  # cached stages this trial computed
STAGES_REUSED = "stages_reused"  # cached stages this trial found ready (computed by another trial)

COST_METRICS = (WALL_S, DEVICE, IMAGES_SEEN, OPT_STEPS, RESTARTS, STAGES_COMPUTED, STAGES_REUSED)

# Human-readable names for report headers.
LABELS = {
    TEST_ACC_AT_BEST_VAL_ACC: "test accuracy (%) at the best validation accuracy",
    TEST_ACC_AT_BEST_VAL_LOSS: "test accuracy (%) at the lowest validation loss",
    TEST_ACC: "test accuracy (%) at the last epoch",
}
