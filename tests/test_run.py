"""End to end through real Ray on real data: every registered table at the smoke profile (one shared run,
its assertions parametrised over the table registry), the results table and the reports; a trial killed
mid-run that resumes to the same numbers; a diverging trial; and runs stopped by Ctrl-C or a killed driver
that keep their finished trials and finish the rest with --resume, also when the plan changed."""

from __future__ import annotations

import json
import re
import math
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from harness import launch
from harness import metrics as M
from search_spaces import CLAIMS, TABLES, plan
from tests.conftest import PAPER_TABLES, REPO, _check, gansweep

def test_resume_runs_the_planned_trials_the_first_run_did_not(smoke):
    first, second = smoke["runs"]
    quick = smoke["results"].query("table == 'quickstart'")
    n, planned = len(TABLES["quickstart"].cells), len(smoke["results"])
    assert f"{n} of {planned} trials are already in" in second.stdout, second.stdout[-2000:]
    assert "no interrupted experiment of this plan" in second.stdout  # the quickstart's experiment had finished
    assert sorted(quick["seed"]) == [0] * n
    assert quick["experiment"].nunique() == 1  # filed by the first run, not run again by the second
    assert smoke["results"]["experiment"].nunique() == 2


@pytest.mark.parametrize("table_name", list(TABLES))
def test_table_runs_at_smoke(table_name, smoke):
    table, out, n = TABLES[table_name], smoke["out"], 1
    rows = smoke["results"].query("table == @table_name")
    assert len(rows) == len(table.cells) * n
    assert set(rows["status"]) == {"ok"}, rows[["cell", "status", "error"]]
    assert sorted(rows["seed"].unique()) == list(range(n))
    for metric in (M.TEST_ACC_AT_BEST_VAL_ACC, M.TEST_ACC_AT_BEST_VAL_LOSS, M.BEST_VAL_ACC):
        assert rows[metric].between(0, 100).all(), rows[metric]
    if table_name == "quickstart":  # LeNet learns Fashion-MNIST within the smoke budget: beat chance (10%)
        assert rows[M.TEST_ACC_AT_BEST_VAL_ACC].mean() > 30
    assert (rows[M.WALL_S] > 0).all() and (rows[M.IMAGES_SEEN] > 0).all() and (rows[M.OPT_STEPS] > 0).all()
    assert set(rows[M.DEVICE]) == {"cpu"}
    assert rows[M.DEVICE_NAME].str.contains("; torch CPU kernels ").all(), rows[M.DEVICE_NAME]  # which CPU ran it
    for column in ("identity", "config_hash", "code_version", "data_fingerprint", "split_hash", "git_revision",
                   "versions", "dataset_label", "fraction", "model"):
        assert rows[column].notna().all(), column
    assert (rows["overrides"] == "{}").all()  # the paper's cells, as the table defines them
    assert "torch" in json.loads(rows["versions"].iloc[0])
    for split_hash, fraction in zip(rows["split_hash"], rows["fraction"]):
        manifest = json.loads((out / "splits" / f"{split_hash}.json").read_text())
        assert manifest["hash"] == split_hash and manifest["fraction"] == fraction
    # one identity per config and seed: cells with the same config (the FIDs of gan_fid) share one trial
    assert rows["identity"].nunique() == rows[["config", "seed"]].drop_duplicates().shape[0]
    # every metric the trainable reported reached results.parquet, not only a whitelist
    distilled = rows[(rows["method"] == "gan_distillation") & rows["config"].str.contains('"fake_source": "generator"')
                     & ~rows["config"].str.contains('"p_r": 1.0')]
    # (no GAN losses where stage 3 trains no GAN: Table 5's one image per class, Table 4's p_r = 1, the control)
    if len(distilled):
        assert distilled[[M.DIST_LOSS, M.G_LOSS, M.D_LOSS]].notna().all().all()

    folder = out / "reports" / table_name
    for name in ("report.md", "report.html", "report.tex", "cells.csv"):
        assert (folder / name).stat().st_size > 0, name
    cells = pd.read_csv(folder / "cells.csv", dtype={"row": str, "col": str})  # a column "0.5" stays a label
    assert len(cells) == len(table.cells)
    text = (folder / "report.md").read_text()
    for cell in table.cells:  # the report shows each cell's mean over seeds, of the cell's own metric
        values = rows[rows["cell"] == cell.name][cell.metric or table.metric]
        shown = cells[(cells["row"] == cell.row) & (cells["col"] == cell.col)]["n"].iloc[0]
        if values.notna().any():
            assert shown == n and f"{values.mean():.2f}" in text
        else:  # e.g. Inception FID without Inception weights: missing, and the report says why
            assert shown == 0 and "Inception" in text
        paper = cells[(cells["row"] == cell.row) & (cells["col"] == cell.col)]["paper"].iloc[0]
        assert (cell.paper is None and math.isnan(paper)) or paper == pytest.approx(cell.paper)
    assert "\\toprule" in (folder / "report.tex").read_text()
    # a figure table: PNGs rendered from the trial's figure data; a table: its cells drawn with CI bars
    pngs = sorted(folder.glob("*.png"))
    assert pngs and all(p.stat().st_size > 5000 for p in pngs), pngs
    assert all(p.name in (folder / "report.html").read_text() for p in pngs)


def test_shared_stages_are_computed_once_and_recurring_cells_run_once(smoke):
    """Concurrent trials (2 at a time) sharing a stage compute it once: every stage the paper-table run
    computed is one new folder in the cache; a cell recurring across tables ran once and was filed in each."""
    paper = smoke["results"][smoke["results"]["table"].isin(PAPER_TABLES)]
    ran = paper[paper["reused_from"].isna()]
    new_stages = smoke["stages_after"] - smoke["stages_before"]
    assert int(ran[M.STAGES_COMPUTED].sum()) == len(new_stages), (ran[M.STAGES_COMPUTED].tolist(), new_stages)
    assert ran["identity"].is_unique and len(ran) < len(paper)  # AlexNet 20% recurs in Tables 1, 3, 4, 5
    assert set(paper["identity"]) == set(ran["identity"])
    assert f"stages: {int(ran[M.STAGES_COMPUTED].sum())} computed" in smoke["runs"][1].stdout


def test_a_finished_plan_runs_nothing_again(smoke, data_root):
    """The same command again: every trial is found by its identity; Ray is not even started."""
    again = _check(gansweep("run", *PAPER_TABLES, "--profile", "smoke", "--seeds", 1, "--data-root", data_root,
                            "--out", smoke["out"]), "again")
    assert "already in" in again.stdout and "Tuner" not in again.stdout + again.stderr
    after = pd.read_parquet(smoke["out"] / "results.parquet")
    assert len(after) == len(smoke["results"])


def test_paper_report_starts_with_a_verdict_per_claim(smoke):
    """`report` of every table in an --out (the smoke fixture's) also writes each paper's report (a paper
    with one table: that table's report): its claims first, each with a verdict (at smoke, one seed:
    inconclusive), then every table."""
    import html as html_lib

    out = smoke["out"]
    papers = {TABLES[n].paper for n in PAPER_TABLES}
    assert papers >= {"pennisi2021", "pham2019", "slim2020"}
    for paper in papers:
        tables = [n for n in PAPER_TABLES if TABLES[n].paper == paper]
        folder = out / "reports" / (paper if len(tables) > 1 else tables[0])  # one table: its report is the paper's
        assert str(folder / "report.html") in smoke["report"].stdout
        page = html_lib.unescape((folder / "report.html").read_text())
        claims = page.index("<h2>Claims")
        first_table = page.index("<h2", claims + 1)  # the section after the claims: a table's
        assert all(page.index(TABLES[n].title) > claims for n in tables if len(tables) > 1)
        for claim in CLAIMS[paper]:
            at = page.index(claim.text)
            assert claims < at < first_table, claim.text
            row = page[page.rfind("<tr", 0, at):page.find("</tr>", at)]  # the claim's row: its verdict badge
            assert re.search(r"reproduced|contradicted|inconclusive|not run", row), claim.text


def test_killed_trial_resumes_to_the_same_numbers(data_root, tmp_path, ray_address, smoke, monkeypatch):
    """A worker that dies after epoch 1 restarts from its checkpoint and ends where the uninterrupted
    smoke run of the same identity ended (CPU): the baseline, and GAN distillation (whose state holds a
    classifier, a GAN with its EMA, three optimisers and the RNGs)."""
    trials = [t for t in plan(["quickstart"], "smoke", seeds=1, methods=["baseline", "gan_distillation"])
              if t.cell.row in ("Baseline", "GAN distillation")]
    monkeypatch.setenv("GANSWEEP_CRASH_AFTER_EPOCH", "1")  # forwarded to the workers by start_ray
    b = launch.run(trials, ["quickstart"], "smoke", data_root, tmp_path, launch.Resources(address=ray_address),
                   verbose=0).set_index("identity").sort_index()
    a = smoke["results"].set_index("identity").loc[b.index]  # the same trials, from the uninterrupted run
    assert len(b) == 2 and (a["table"] == "quickstart").all() and (a[M.RESTARTS] == 0).all()
    # each trial really died once and resumed; a baseline trial whose classifier stage the distillation
    # trial computed first (in its own folder checkpoints) reports that stored run instead
    reused = (b["method"] == "baseline") & (b[M.STAGES_REUSED] == 1)
    assert ((b[M.RESTARTS] == 1) | reused).all(), b[[M.RESTARTS, M.STAGES_REUSED]]
    assert (b.loc[b["method"] == "gan_distillation", M.RESTARTS] == 1).all()
    for metric in M.FINAL_METRICS + (M.IMAGES_SEEN, M.OPT_STEPS):
        assert a[metric].equals(b[metric]), (metric, a[metric].tolist(), b[metric].tolist())


def test_diverging_trial_is_marked_and_the_grid_goes_on(data_root, tmp_path, ray_address):
    """A trial whose loss becomes non-finite stops early with status 'diverged'; its neighbour finishes."""
    import dataclasses

    trials = plan(["quickstart"], "smoke", seeds=2, methods=["baseline"])
    assert [t.config.seed for t in trials] == [0, 1]
    # Adam at lr 1e9 moves every weight by ~1e9 per step: the logits overflow within a few steps.
    trials[0] = dataclasses.replace(trials[0], config=dataclasses.replace(trials[0].config, lr=1e9))
    rows = launch.run(trials, ["quickstart"], "smoke", data_root, tmp_path, launch.Resources(address=ray_address),
                      verbose=0)
    status = dict(zip(rows["seed"], rows["status"]))
    assert status == {0: "diverged", 1: "ok"}, rows[["seed", "status", "error"]]
    diverged = rows[rows["seed"] == 0].iloc[0]
    assert diverged[M.DIVERGED] == 1 and diverged[M.DONE_EPOCHS] == 1
    assert json.loads(diverged["overrides"]) == {"lr": 1e9}  # a config changed by hand is labelled as such


def _start(args, **popen):
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *map(str, args)], cwd=REPO, start_new_session=True,
                            text=True, **popen)


def _progress(out) -> dict[tuple[str, int], list[dict]]:
    """(cell, seed) -> the reports in its Tune result.json so far."""
    found = {}
    for path in (out / "tune").glob("*/*/result.json"):
        try:
            lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        except ValueError:  # a line being written
            continue
        if lines:
            t = lines[0]["config"]["trial"]
            found[(t["cell"], t["config"]["seed"])] = lines
    return found


def _between_epochs(out) -> set:
    """The trials past their epoch-1 checkpoint (of 2, at smoke), once a trial has finished: with 2 trials
    at a time, a third trial has started only when one of the first two returned."""
    progress = _progress(out)
    if len(progress) < 3:
        return set()
    return {key for key, r in progress.items() if r[-1]["training_iteration"] == 1}


def _wait_for(condition, driver, what, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline and driver.poll() is None and not condition():
        time.sleep(0.2)
    assert condition() and driver.poll() is None, f"the run ended before {what}"


def _stop_between_epochs(driver, out, signum, earlier=frozenset()):
    """Once a trial has finished and another (not one of ``earlier``) is between its epochs, and Tune has saved
    the experiment's state since, send ``signum`` to the driver. Returns (that trial, the driver's stderr)."""
    seen = set()
    _wait_for(lambda: seen.update(_between_epochs(out) - earlier) or seen, driver,
              "a trial finished and another was between epochs")
    time.sleep(1.2)  # past the next save of the experiment's state
    os.killpg(driver.pid, signum)
    _, stderr = driver.communicate(timeout=300)
    # The trial cut between its epochs: seen there before the state save, and still there when the driver
    # stopped (seen in CI: one seen between epochs had finished by the time it was looked up again).
    cut = next(iter(sorted(seen & _between_epochs(out))), None)
    assert cut is not None, f"no trial was between its epochs when the driver stopped: {_progress(out).keys()}"
    return cut, stderr


def _resumed_from_its_checkpoint(out, key) -> None:
    """The trial ``key`` reported epoch 1 once (never restarted from scratch) and ended at epoch 2; an epoch 2
    reported in the last second before a SIGKILL, after Tune's last save of its state, runs again from the
    epoch-1 checkpoint: [1, 2, 2]."""
    iterations = [r["training_iteration"] for r in _progress(out)[key]]
    assert iterations.count(1) == 1 and set(iterations) == {1, 2}, (key, iterations)
    assert _progress(out)[key][-1][M.EPOCH] == 2


def test_stopped_run_keeps_finished_trials_and_resumes_a_changed_plan(data_root, tmp_path, ray_address):
    """A run stopped by Ctrl-C once a trial has finished (exit 130 naming --resume, only finished trials
    filed); `--resume` with one more seed, its driver killed (SIGKILL) while another trial is between epochs
    (the restored experiment's trials are filed when it ends, before the new seed's experiment starts); `--resume` again: the interrupted experiment is restored both times (its trials
    are in the new plan), unfinished trials continue from their checkpoints, finished ones are not run again,
    the new seed runs, each trial is filed once, and Tune's plan file says the experiment ended. A plan on
    another dataset does not restore it. (One sequence for both ways to stop: one driver start less.)"""
    out = tmp_path / "out"
    args = ["run", "quickstart", "--profile", "smoke", "--methods", "baseline", "--data-root", data_root,
            "--out", out, "--address", ray_address]
    # 5 s after each of a trial's reports: room to stop the driver while a trial is past its epoch-1
    # checkpoint and another is finished (with 3 s, a loaded CI machine filed a trial's epoch 2 within a
    # second of its epoch 1); Tune saves the experiment's state every second here
    env = {**os.environ, "PYTHONPATH": str(REPO), "GANSWEEP_EPOCH_DELAY_S": "5", "TUNE_GLOBAL_CHECKPOINT_S": "1"}

    # ---- Ctrl-C
    driver = _start([*args, "--seeds", 4], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    first_cut, stderr = _stop_between_epochs(driver, out, signal.SIGINT)
    experiment = next((out / "tune").iterdir())
    before = pd.read_parquet(out / "results.parquet")
    assert driver.returncode == 130, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("gansweep: interrupted:") and "--resume" in last and "not done" in last
    assert 1 <= len(before) < 4 and (before["status"] == "ok").all() and (before[M.DONE_EPOCHS] == 2).all()
    assert not json.loads((experiment / launch.PLAN_FILE).read_text())["complete"]

    # another dataset is another plan: the experiment is not restored for it
    other = launch.identify(plan(["quickstart"], "smoke", seeds=4, methods=["baseline"], dataset="cifar10"),
                            {"cifar10": {"fingerprint": "cifar10-content"}})  # (not decoded: 20 s saved)
    assert launch.resumable_experiment(out / "tune", {t.identity for t in other}) is None

    # ---- --resume with one more seed, its driver killed
    stopped = _between_epochs(out)  # the Ctrl-C'd trials still between epochs
    log = (tmp_path / "resume1.out").open("w")
    driver = _start([*args, "--seeds", 5, "--resume"], stdout=log, stderr=subprocess.STDOUT, env=env)
    second_cut, _ = _stop_between_epochs(driver, out, signal.SIGKILL, earlier=frozenset(stopped))
    assert driver.returncode == -signal.SIGKILL
    assert f"resuming {experiment}" in (tmp_path / "resume1.out").read_text()
    # rows are filed when an experiment ends: the restored one's, if the kill came in the new seed's experiment
    mid = pd.read_parquet(out / "results.parquet")
    assert len(before) <= len(mid) <= 4 and set(before["identity"]) <= set(mid["identity"])
    # killed inside the restored experiment, or inside the new seed's own experiment that follows it
    plans = lambda: [json.loads((e / launch.PLAN_FILE).read_text())["complete"] for e in (out / "tune").iterdir()]  # noqa: E731
    assert not all(plans())

    # ---- --resume again: the grid completes
    resumed = _check(gansweep(*args, "--seeds", 5, "--resume"), "resume")
    assert "resuming " in resumed.stdout, resumed.stdout  # the interrupted experiment: seeds 0-3's, or seed 4's
    assert "were not found" not in resumed.stdout + resumed.stderr  # no alarm for trials that had not started
    after = pd.read_parquet(out / "results.parquet")
    assert len(after) == 5 and (after["status"] == "ok").all() and (after[M.DONE_EPOCHS] == 2).all()
    assert not after.duplicated(["cell", "seed"]).any()
    assert set(after.query("seed < 4")["experiment"]) == {experiment.name}  # restored, never run anew
    kept = after.set_index("identity").loc[before["identity"]]  # filed before the Ctrl-C, not run again
    assert (kept["recorded_at"] == before.set_index("identity")["recorded_at"]).all()
    # both trials stopped between their epochs continued from their epoch-1 checkpoints
    for cut in {first_cut, second_cut}:
        assert after.set_index(["cell", "seed"]).loc[cut][M.RESTARTS] >= 1, cut
        _resumed_from_its_checkpoint(out, cut)
    assert all(plans())


@pytest.mark.parametrize("table_name", list(TABLES))
def test_every_profile_of_every_table_makes_valid_configs(table_name):
    """Each profile builds a valid config for each cell; at converge every stage early-stops within a
    maximum (the classifier and stage 3 on validation accuracy, the GAN on its FID), and a table whose
    paper used other data or backbones says what converge substitutes."""
    from search_spaces import PROFILES

    table = TABLES[table_name]
    for profile in PROFILES:
        for cell in table.cells:
            cfg = table.config(cell, profile, seed=0)
            if profile == "converge":
                assert cfg.patience > 0 and cfg.epochs > cfg.patience, cell.name
                if hasattr(cfg, "gan") and getattr(cfg, "GAN_STOPS_EARLY", True):  # DeGAN's says why not
                    assert cfg.gan.patience > 0 and cfg.gan.fid_model, cell.name
                if hasattr(cfg, "distill_epochs"):
                    assert cfg.distill_epochs > cfg.patience, cell.name
            if profile == "paper" and table.paper == "pennisi2021":  # his text: no augmentation, BCE, Algorithm 1
                assert cfg.crop_padding == 0 and not cfg.flip, cell.name
                if hasattr(cfg, "gan"):
                    assert cfg.gan.loss == "bce", cell.name
                if hasattr(cfg, "epoch_mode"):
                    assert cfg.epoch_mode == "algorithm1", cell.name
    if table.paper == "pennisi2021":
        assert "fashion_mnist for cifar10" in table.substitution("converge")
