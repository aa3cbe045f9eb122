"""Determinism and measurement hygiene, through real Ray on real data at the smoke profile.

Two runs of the quickstart LeNet cells and one paper-table cell of each method the quickstart lacks (seed 0),
each run in its own --out so that nothing is shared through the stage cache: run A (the session's smoke run,
tests/conftest.py) holds one trial of every registered method; run B holds the same trials, plus the
GAN distillation trial again with measurements changed (``fid_every`` 0: FID only after the last epoch,
instead of every epoch; ``fid_images`` 32 instead of the profile's 100).

- Every method, run twice with the same cell and seed on the CPU, reports identical metrics (issue 7,
  item 9): each trial of A against its twin in B, stages included (each run computes its own).
- Measuring is not training (item 8): the distillation trial measured every epoch (A) and the one measured
  only after its last epoch, on fewer images (B), report bit-identical training metrics at every epoch. It
  fails when a measurement draws from the training RNG (seen before the fix: epoch 2 differed) or changes
  any state training reads.

Per-epoch numbers come from Tune's ``result.json`` of each trial (everything the trainable reported), not
only from results.parquet's columns. And ``set_deterministic`` (``--deterministic``, for CUDA) sets what it
says and changes nothing on the CPU.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest

import torch
import torch.nn.functional as F

from harness import launch
from harness import metrics as M
from harness.checkpoint import set_deterministic
from harness.gans import build_gan
from harness.models import build_classifier
from search_spaces import plan
from trainables import METHODS

# What a trial measures rather than trains: free to change with fid_every / fid_images.
MEASUREMENTS = {M.FID_CLASSIFIER, M.FID_INCEPTION, M.IS_MEAN, M.IS_STD, M.KID_MEAN, M.KID_STD,
                M.METRIC_MISSING_REASON, M.DIVERSITY_RATIO, M.COLLAPSE_EPOCH, M.FID_PRETRAINED_CLASSIFIER,
                M.FID_PRETRAINED_INCEPTION}
DISTIL = "GAN distillation | LeNet"  # the quickstart cell whose every epoch is compared
# The methods outside the quickstart: the cell of each that exercises most of it (filtered_sampling: on the fly,
# filter, transforms; multi_gan: a conditioned chain of 2 GANs, Slim's sample weights, the filter; class_incremental:
# the old model, the generator, KD on generated batches and the logit-scaling term)
TWINS = {"slim2020.table1": "On-the-fly + transforms + filtering | Accuracy",
         "slim2020.table3": "C (identity) | |G| = 2", "addepalli2020.table1": "(Ours) DeGAN | F-MNIST",
         "addepalli2020.table3": "DeGAN (Ours) | Accuracy (%)"}
# Bookkeeping of where and how fast a trial ran, not what it computed: a stage is computed by whichever
# trial of a run gets there first, and wall time is wall time.
NOT_COMPUTED = {M.WALL_S, M.STAGES_COMPUTED, M.STAGES_REUSED, M.STAGES_STALE}
# Every metric name harness.metrics defines: a metric added there is compared here without a test edit.
METRIC_NAMES = {v for k, v in vars(M).items() if k.isupper() and isinstance(v, str)} - NOT_COMPUTED
TRAINING = METRIC_NAMES - MEASUREMENTS


@pytest.fixture(scope="module")
def runs(data_root, ray_address, tmp_path_factory, smoke):
    """(rows of run A, rows of run B), each row with its per-epoch ``reports`` from Tune's result.json.

    Run A is the session's smoke run of the quickstart (tests/conftest.py), whose LeNet cells at seed 0
    are these trials; run B runs them again in its own --out (no stage shared through the cache)."""
    trials = [t for t in plan(["quickstart"], "smoke", seeds=1) if t.cell.col == "LeNet"]
    # methods the quickstart does not run: a cell of a paper table the smoke run ran (seed 0)
    trials += [t for table, cell in TWINS.items() for t in plan([table], "smoke", seeds=1) if t.cell.name == cell]
    assert {t.cell.method for t in trials} == set(METHODS)  # every registered method
    distill = next(t for t in trials if t.cell.row == "GAN distillation")
    # The smoke budget measures mid-training (FID after epoch 1 of 2): what a leaky measurement would change.
    assert distill.config.fid_every == 1 and distill.config.distill_epochs >= 2 and distill.config.fid_images != 32
    measured_less = dataclasses.replace(distill, config=dataclasses.replace(distill.config, fid_every=0,
                                                                             fid_images=32))
    out = tmp_path_factory.mktemp("determinism")
    # the decoded datasets (keyed by their content) are shared with run A, the stages are not: CIFAR-10's
    # JPEGs, decoded again for the paper-table twins, cost ~15 s
    (out / "b" / "cache").mkdir(parents=True)
    (out / "b" / "cache" / "data").symlink_to(smoke["out"] / "cache" / "data", target_is_directory=True)
    b = launch.run(trials + [measured_less], ["quickstart", *TWINS], "smoke", data_root, out / "b",
                   launch.Resources(address=ray_address), verbose=0)
    assert len(b) == len(trials) + 1
    a = smoke["results"][smoke["results"]["identity"].isin(set(b["identity"]))]
    # a trial the smoke run filed under several tables (a figure's cell is a table's) has a row per table: keep
    # the row of the table and cell planned here
    planned = {(t.table, t.cell.name) for t in trials}
    a = a[[(table, cell) in planned for table, cell in zip(a["table"], a["cell"])]]
    assert len(a) == len(trials)  # the same identities: same configs, data and code
    return _with_reports(a), _with_reports(b)


def _with_reports(rows: pd.DataFrame) -> dict[tuple[str, int], dict]:
    """(cell, fid_every or -1) -> the results row as a dict, plus ``reports``: every tune.report, in order."""
    out = {}
    for row in rows.to_dict("records"):
        assert row["status"] == "ok", (row["method"], row["error"])
        config = json.loads(row["config"])
        lines = (Path(row["trial_path"]) / "result.json").read_text().splitlines()
        row["reports"] = [json.loads(line) for line in lines if line.strip()]
        out[(row["cell"], config.get("fid_every", -1))] = row
    return out


def _same(x, y) -> bool:
    """Bit-identical, with NaN equal to NaN (an epoch that did not measure reports NaN)."""
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    return x == y


def _differences(a: dict, b: dict, names: set[str]) -> dict:
    return {k: (a.get(k), b.get(k)) for k in sorted(names & (set(a) | set(b))) if not _same(a.get(k), b.get(k))}


def test_every_method_twice_with_the_same_seed_gives_identical_metrics(runs):
    a, b = runs
    assert {row["method"] for row in a.values()} == set(METHODS)
    for key, first in a.items():
        second = b[key]
        for name in M.FINAL_METRICS + (M.IMAGES_SEEN, M.OPT_STEPS, M.RESTARTS, M.DEVICE):
            assert _same(first[name], second[name]), (key, name, first[name], second[name])
        # everything the trial reported last (results.parquet keeps only some of it)
        assert first["reports"][-1][M.DONE_EPOCHS] == second["reports"][-1][M.DONE_EPOCHS]
        assert not _differences(first["reports"][-1], second["reports"][-1], METRIC_NAMES), key
    # distillation reports each of its epochs itself: all of them agree, FID included
    first, second = a[(DISTIL, 1)], b[(DISTIL, 1)]
    assert len(first["reports"]) == first[M.DONE_EPOCHS] >= 2
    for epoch_a, epoch_b in zip(first["reports"], second["reports"], strict=True):
        assert not _differences(epoch_a, epoch_b, METRIC_NAMES), epoch_a[M.EPOCH]


def test_measuring_less_often_on_fewer_images_leaves_training_bit_identical(runs):
    a, b = runs
    every_epoch, last_only = a[(DISTIL, 1)]["reports"], b[(DISTIL, 0)]["reports"]
    assert len(every_epoch) == len(last_only) >= 2
    # the two really measured differently: A after epoch 1, B not; both after the last epoch
    assert math.isfinite(every_epoch[0][M.FID_CLASSIFIER]) and math.isnan(last_only[0][M.FID_CLASSIFIER])
    assert math.isfinite(last_only[-1][M.FID_CLASSIFIER])
    for epoch_a, epoch_b in zip(every_epoch, last_only, strict=True):
        assert {M.TRAIN_LOSS, M.VAL_ACC, M.TEST_ACC, M.DIST_LOSS, M.G_LOSS, M.IMAGES_SEEN,
                M.OPT_STEPS, M.TEST_ACC_AT_BEST_VAL_ACC} <= set(epoch_a)
        assert not _differences(epoch_a, epoch_b, TRAINING), epoch_a[M.EPOCH]
    # and in results.parquet
    row_a, row_b = a[(DISTIL, 1)], b[(DISTIL, 0)]
    for name in sorted((set(M.FINAL_METRICS) | {M.IMAGES_SEEN, M.OPT_STEPS}) - MEASUREMENTS):
        assert _same(row_a[name], row_b[name]), (name, row_a[name], row_b[name])


def _train_steps(steps: int = 2) -> list[torch.Tensor]:
    """A few SGD steps of LeNet and of the small DCGAN's generator (conv, transposed conv, BN, linear,
    cross-entropy) from seed 0; their parameters afterwards."""
    torch.manual_seed(0)
    clf, gen = build_classifier("lenet", 1, 28, 10), build_gan("dcgan_small", 1, 28, 10).generator
    opt = torch.optim.SGD([*clf.parameters(), *gen.parameters()], lr=0.1)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        y = torch.randint(10, (16,), generator=g)
        fake = gen(torch.randn(16, gen.z_dim, generator=g), y)
        loss = F.cross_entropy(clf(fake), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [p.detach().clone() for p in [*clf.parameters(), *gen.parameters()]]


def test_set_deterministic_sets_the_flags_and_changes_nothing_on_the_cpu(monkeypatch, one_torch_thread):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    assert not torch.are_deterministic_algorithms_enabled()
    default = _train_steps()
    try:
        set_deterministic(True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        strict = _train_steps()  # no CPU op of ours lacks a deterministic kernel (it would raise)
    finally:
        set_deterministic(False)
    assert not torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.deterministic
    assert all(torch.equal(a, b) for a, b in zip(default, strict, strict=True))
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")  # a user's own (valid) choice is kept
    try:
        set_deterministic(True)
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
    finally:
        set_deterministic(False)
