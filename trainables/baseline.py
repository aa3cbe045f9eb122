"""baseline: supervised training on a seeded fraction of the real training set (all four papers).

The classifier trains on the cell's training subset with the optimiser of its config; each epoch it
is evaluated on the validation split and on the official test set, and the trial reports test
accuracy at the lowest validation loss (how Pennisi selects his pre-trained classifier) and at the
highest validation accuracy (how his tables are reported). Checkpointed every epoch; a restarted
trial resumes from its last checkpoint and ends with the numbers of an uninterrupted run.
"""

from __future__ import annotations

import math
import time

import torch

from harness import checkpoint, metrics as M
from harness.data import load_images, make_split
from harness.models import build_classifier
from harness.train import (ClassifierConfig, eval_subset, evaluate, final_metrics, make_optimizer, real_batches,
                           train_epoch)
from harness.trial import setup
from trainables import register_method


@register_method(ClassifierConfig)
def baseline(params: dict) -> None:
    cfg, ctx, device = setup(params, ClassifierConfig)

    # ---- data: the cell's split of the official train set, and the official test set ----
    images = load_images(ctx.data_file)
    split = make_split(images.train_y, cfg.fraction, cfg.val_fraction, cfg.seed)
    images = images.to(device)
    train_x, train_y = images.train_x[split.train], images.train_y[split.train]
    val_x, val_y = eval_subset(images.train_x[split.val], images.train_y[split.val], cfg)
    test_x, test_y = eval_subset(images.test_x, images.test_y, cfg)

    # ---- model, optimiser, and the state of an interrupted run ----
    generator = checkpoint.seed_everything(cfg.seed)
    model = build_classifier(cfg.model, images.shape[0], images.shape[1], len(images.classes)).to(device)
    opt, sched = make_optimizer(cfg, model.parameters())
    history, cost = [], {M.WALL_S: 0.0, M.IMAGES_SEEN: 0, M.OPT_STEPS: 0, M.RESTARTS: 0}
    start_epoch = 1
    if state := checkpoint.restore():
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        checkpoint.set_rng_states(state["rng"], generator)
        history, start_epoch = state["history"], state["epoch"] + 1
        cost = {**state["cost"], M.RESTARTS: state["cost"][M.RESTARTS] + 1}

    # ---- training: one report and one checkpoint per epoch ----
    for epoch in range(start_epoch, cfg.epochs + 1):
        t0 = time.perf_counter()
        stats = train_epoch(model, opt, real_batches(train_x, train_y, cfg, generator))
        sched.step()
        if stats["diverged"]:
            val_loss = val_acc = test_loss = test_acc = math.nan
        else:
            val_loss, val_acc = evaluate(model, val_x, val_y, cfg.eval_batch_size)
            test_loss, test_acc = evaluate(model, test_x, test_y, cfg.eval_batch_size)
        cost = {**cost, M.WALL_S: cost[M.WALL_S] + time.perf_counter() - t0,
                M.IMAGES_SEEN: cost[M.IMAGES_SEEN] + stats["images"],
                M.OPT_STEPS: cost[M.OPT_STEPS] + stats["steps"]}
        history.append({M.EPOCH: epoch, M.TRAIN_LOSS: stats[M.TRAIN_LOSS], M.TRAIN_ACC: stats[M.TRAIN_ACC],
                        M.VAL_LOSS: val_loss, M.VAL_ACC: val_acc, M.TEST_LOSS: test_loss, M.TEST_ACC: test_acc})
        diverged = stats["diverged"] or not math.isfinite(val_loss)
        result = {**history[-1], **final_metrics(history), **cost, M.DEVICE: device.type,
                  M.SPLIT_HASH: split.hash, M.DIVERGED: int(diverged), M.DONE_EPOCHS: epoch}
        checkpoint.report(result, {
            "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "rng": checkpoint.rng_states(generator), "history": history, "cost": cost, "epoch": epoch})
        if diverged:  # marked in the results; the rest of the grid goes on
            return
