"""End to end through real Ray on real data: every registered table at the smoke profile, the
results table and the reports; a trial killed mid-run that resumes to the same numbers; and a run
stopped with Ctrl-C that keeps its finished trials and finishes the rest with --resume."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from harness import metrics as M
from search_spaces import TABLES
from tests.conftest import REPO, gansweep

def _stage_folders(out):
    """Finished stage artifacts (<kind>-<key>; work folders and locks have a dot in their names)."""
    root = out / "cache" / "stages"
    return {p.name for p in root.iterdir() if p.is_dir() and "." not in p.name} if root.is_dir() else set()


@pytest.mark.parametrize("table_name", list(TABLES))
def test_table_runs_at_smoke(table_name, data_root, shared_out, ray_address):
    table = TABLES[table_name]
    SEEDS = 2 if table_name == "quickstart" else 1  # a std for one table; one seed keeps the rest fast
    stages_before = _stage_folders(shared_out)
    # a relative --out, as a user types it (trials run in other working directories)
    run = gansweep("run", table_name, "--profile", "smoke", "--seeds", SEEDS, "--data-root", data_root,
                   "--out", shared_out.name, "--address", ray_address, cwd=shared_out.parent)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    df = pd.read_parquet(shared_out / "results.parquet")
    rows = df[df["table"] == table_name]
    assert len(rows) == len(table.cells) * SEEDS
    assert set(rows["status"]) == {"ok"}, rows[["cell", "status", "error"]]
    assert sorted(rows["seed"].unique()) == list(range(SEEDS))
    for metric in (M.TEST_ACC_AT_BEST_VAL_ACC, M.TEST_ACC_AT_BEST_VAL_LOSS, M.BEST_VAL_ACC):
        assert rows[metric].between(0, 100).all(), rows[metric]
    if table_name == "quickstart":  # LeNet learns Fashion-MNIST within the smoke budget: beat chance (10%)
        assert rows[M.TEST_ACC_AT_BEST_VAL_ACC].mean() > 30
    assert (rows[M.WALL_S] > 0).all() and (rows[M.IMAGES_SEEN] > 0).all() and (rows[M.OPT_STEPS] > 0).all()
    assert set(rows[M.DEVICE]) == {"cpu"}
    for column in ("config_hash", "split_hash", "git_revision", "versions", "dataset_label", "fraction", "model"):
        assert rows[column].notna().all(), column
    assert "torch" in json.loads(rows["versions"].iloc[0])
    for split_hash, fraction in zip(rows["split_hash"], rows["fraction"]):
        manifest = json.loads((shared_out / "splits" / f"{split_hash}.json").read_text())
        assert manifest["hash"] == split_hash and manifest["fraction"] == fraction
    assert rows["config_hash"].nunique() == len(rows)  # one config per cell and seed
    # Concurrent trials (2 at a time) that share a stage compute it once: every stage this run
    # computed is one new folder in the cache.
    ran = rows[rows["reused_from"].isna()]
    new_stages = _stage_folders(shared_out) - stages_before
    assert int(ran[M.STAGES_COMPUTED].sum()) == len(new_stages), (ran[M.STAGES_COMPUTED].tolist(), new_stages)

    report = gansweep("report", table_name, "--out", shared_out)
    assert report.returncode == 0, report.stderr
    folder = shared_out / "reports" / table_name
    for name in ("report.md", "report.html", "report.tex", "cells.csv"):
        assert (folder / name).stat().st_size > 0, name
    cells = pd.read_csv(folder / "cells.csv")
    assert len(cells) == len(table.cells) and (cells["n"] == SEEDS).all()
    for cell in table.cells:  # the report shows each cell's mean over seeds
        mean = rows[rows["cell"] == cell.name][table.metric].mean()
        assert f"{mean:.2f}" in report.stdout
        paper = cells[(cells["row"] == cell.row) & (cells["col"] == cell.col)]["paper"].iloc[0]
        assert (cell.paper is None and math.isnan(paper)) or paper == pytest.approx(cell.paper)
    assert "\\toprule" in (folder / "report.tex").read_text()
    if table.figure:  # a figure: PNGs rendered from the trial's figure data, embedded in the HTML
        pngs = sorted(folder.glob("*.png"))
        assert pngs and all(p.stat().st_size > 5000 for p in pngs), pngs
        assert all(p.name in (folder / "report.html").read_text() for p in pngs)

    again = gansweep("run", table_name, "--profile", "smoke", "--seeds", SEEDS, "--data-root", data_root,
                     "--out", shared_out, "--address", ray_address)
    assert again.returncode == 0 and "already in" in again.stdout
    assert len(pd.read_parquet(shared_out / "results.parquet").query("table == @table_name")) == len(rows)


def test_killed_trial_resumes_to_the_same_numbers(data_root, tmp_path, ray_address):
    """A worker that dies after epoch 1 restarts from its checkpoint and ends where an
    uninterrupted run with the same seed ends (CPU): the baseline, and GAN distillation (whose state
    holds a classifier, a GAN with its EMA, three optimisers and the RNGs)."""
    common = ("run", "quickstart", "--profile", "smoke", "--seeds", 1, "--data-root", data_root,
              "--methods", "baseline,gan_distillation", "--address", ray_address)
    clean = gansweep(*common, "--out", tmp_path / "clean")
    crashed = gansweep(*common, "--out", tmp_path / "crashed", env={"GANSWEEP_CRASH_AFTER_EPOCH": "1"})
    assert clean.returncode == 0, clean.stderr[-3000:]
    assert crashed.returncode == 0, crashed.stderr[-3000:]
    a = pd.read_parquet(tmp_path / "clean" / "results.parquet").set_index("cell").sort_index()
    b = pd.read_parquet(tmp_path / "crashed" / "results.parquet").set_index("cell").sort_index()
    assert (a[M.RESTARTS] == 0).all()
    # each trial really died once and resumed; a baseline trial whose classifier stage a distillation
    # trial computed first (in its own folder checkpoints) reports that stored run instead
    reused = (b["method"] == "baseline") & (b[M.STAGES_REUSED] == 1)
    assert ((b[M.RESTARTS] == 1) | reused).all(), b[[M.RESTARTS, M.STAGES_REUSED]]
    assert (b.loc[b["method"] == "gan_distillation", M.RESTARTS] == 1).all()
    for metric in M.FINAL_METRICS + (M.IMAGES_SEEN, M.OPT_STEPS):
        assert a[metric].equals(b[metric]), (metric, a[metric].tolist(), b[metric].tolist())


def test_diverging_trial_is_marked_and_the_grid_goes_on(data_root, tmp_path, ray_address):
    """A trial whose loss becomes non-finite stops early with status 'diverged'; its neighbour finishes."""
    import dataclasses

    from harness import launch
    from search_spaces import plan

    trials = plan(["quickstart"], "smoke", seeds=1, methods=["baseline"])
    assert [t.cell.col for t in trials] == ["lenet", "lenet_half"]
    # Adam at lr 1e9 moves every weight by ~1e9 per step: the logits overflow within a few steps.
    trials[0] = dataclasses.replace(trials[0], config=dataclasses.replace(trials[0].config, lr=1e9))
    rows = launch.run(trials, ["quickstart"], "smoke", data_root, tmp_path, launch.Resources(address=ray_address),
                      verbose=0)
    status = dict(zip(rows["model"], rows["status"]))
    assert status == {"lenet": "diverged", "lenet_half": "ok"}, rows[["model", "status", "error"]]
    diverged = rows[rows["model"] == "lenet"].iloc[0]
    assert diverged[M.DIVERGED] == 1 and diverged[M.DONE_EPOCHS] == 1


def test_interrupted_run_keeps_finished_trials_and_resumes(data_root, tmp_path, ray_address):
    """Ctrl-C mid-grid: exit 130 with one line naming --resume; results.parquet holds only trials that
    finished (none cut mid-run posing as final); --resume runs the rest, each trial filed once."""
    out = tmp_path / "out"
    args = ["run", "quickstart", "--profile", "smoke", "--seeds", "3", "--methods", "baseline",
            "--data-root", str(data_root), "--out", str(out), "--address", ray_address]
    driver = subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=REPO, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline, reported = time.time() + 300, []
    while time.time() < deadline and driver.poll() is None and not reported:  # Ctrl-C once a trial reported
        reported = [p for p in (out / "tune").glob("*/*/result.json") if p.stat().st_size > 0]
        time.sleep(0.2)
    assert reported and driver.poll() is None, "the run ended before any trial reported"
    os.killpg(driver.pid, signal.SIGINT)
    _, stderr = driver.communicate(timeout=300)
    assert driver.returncode == 130, stderr[-3000:]
    assert stderr.strip().splitlines()[-1].startswith("gansweep: interrupted:") and "--resume" in stderr
    before = pd.read_parquet(out / "results.parquet") if (out / "results.parquet").exists() else pd.DataFrame()
    assert len(before) < 6 and (before.get("status", pd.Series(dtype=str)) == "ok").all()
    assert (before.get(M.DONE_EPOCHS, pd.Series(dtype=float)) == 2).all()  # smoke: 2 epochs, all of them

    resumed = gansweep(*args, "--resume")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    after = pd.read_parquet(out / "results.parquet")
    assert len(after) == 6 and (after["status"] == "ok").all() and (after[M.DONE_EPOCHS] == 2).all()
    assert not after.duplicated(["cell", "seed"]).any()
