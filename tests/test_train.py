"""The shared classifier loop with SGD, momentum, weight decay and a multistep schedule (the baseline's
other optimiser), checkpointed to a folder and resumed, on real Fashion-MNIST (no Ray)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from harness.checkpoint import FolderCheckpointer
from harness.data import tensor_cache
from harness.train import ClassifierConfig, cell_data, fit_classifier


def test_sgd_with_milestones_trains_and_resumes(data_root, shared_out, tmp_path):
    torch.set_num_threads(1)
    cfg = ClassifierConfig(dataset="fashion_mnist", fraction=0.05, model="lenet", optimizer="sgd", lr=0.05,
                           momentum=0.9, weight_decay=5e-4, milestones=(2,), gamma=0.1, batch_size=64, epochs=3,
                           crop_padding=2, max_eval_images=1000)
    data = cell_data(str(tensor_cache("fashion_mnist", data_root, shared_out / "cache" / "data")), cfg,
                     torch.device("cpu"), fingerprint="fmnist-test")
    full = fit_classifier(cfg, data, torch.device("cpu"), FolderCheckpointer(tmp_path / "a"))
    assert [h["epoch"] for h in full["history"]] == [1, 2, 3]
    assert full["result"]["test_acc_at_best_val_acc"] > 50  # LeNet on 3,000 Fashion-MNIST images
    assert full["best"]["epoch"] == full["result"]["best_val_loss_epoch"]
    # the schedule really decayed: lr 0.05 for epochs 1-2, then x0.1 after milestone 2
    state = torch.load(tmp_path / "a" / "state.pt", weights_only=False)
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.005)
    assert state["optimizer"]["param_groups"][0]["momentum"] == 0.9
    assert state["optimizer"]["param_groups"][0]["weight_decay"] == 5e-4

    # stop after 2 epochs, then resume from the folder checkpoint: the same numbers as uninterrupted
    two = fit_classifier(dataclasses.replace(cfg, epochs=2), data, torch.device("cpu"), FolderCheckpointer(tmp_path / "b"))
    assert two["history"] == full["history"][:2]
    resumed = fit_classifier(cfg, data, torch.device("cpu"), FolderCheckpointer(tmp_path / "b"))
    assert resumed["history"] == full["history"] and resumed["cost"]["restarts"] == 1


def test_test_set_once_at_the_end_gives_the_same_best_epoch_metrics(data_root, shared_out, tmp_path):
    """``test_every_epoch=False`` (the converge profile) evaluates the test set only on the kept weights of
    the best-validation epochs, at the end: the reports' metrics equal those of testing every epoch."""
    torch.set_num_threads(1)
    cfg = ClassifierConfig(dataset="fashion_mnist", fraction=0.05, model="lenet", lr=3e-3, batch_size=64, epochs=5,
                           crop_padding=0, flip=False, max_eval_images=1000)
    data = cell_data(str(tensor_cache("fashion_mnist", data_root, shared_out / "cache" / "data")), cfg,
                     torch.device("cpu"), fingerprint="fmnist-test")
    every = fit_classifier(cfg, data, torch.device("cpu"), FolderCheckpointer(tmp_path / "every"))
    once = fit_classifier(dataclasses.replace(cfg, test_every_epoch=False), data, torch.device("cpu"),
                          FolderCheckpointer(tmp_path / "once"))
    keys = ("test_acc_at_best_val_acc", "test_acc_at_best_val_loss", "best_val_acc_epoch", "best_val_loss_epoch")
    assert {k: once["result"][k] for k in keys} == {k: every["result"][k] for k in keys}
    tested = [h["epoch"] for h in once["history"] if h["test_acc"] == h["test_acc"]]  # not NaN
    assert tested == sorted({once["result"]["best_val_acc_epoch"], once["result"]["best_val_loss_epoch"]})
    assert [h["val_acc"] for h in once["history"]] == [h["val_acc"] for h in every["history"]]  # training unchanged
