"""An Optuna search through Ray Tune at the smoke profile, whose driver is killed mid-search: --resume
finishes it with exactly N trials, the exported study loads with optuna.load_study (its objective named,
each trial carrying its config hash and identity), the report renders Optuna's plots, and
--confirm-best runs the best config beside the paper's cell, which `gansweep report <table>` shows.
One search serves all of it (each Ray start costs ~20 s); the rest are checks without Ray, among them one
per registered search space: its parameters fit its method's config, convert to Tune's domains and to the
Optuna distributions OptunaSearch samples from, and go through the exported study, --confirm-best and the
report with their types (float, int, categorical)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import dataclasses
import json

import numpy as np
import optuna
import pandas as pd
import pytest

from harness import metrics as M
from harness.checkpoint import EPOCH_DELAY_ENV
from harness.cli import main
from harness.config import ConfigError
from harness.search import (TRIALS_FILE, best_trial, check_params, confirm_trials, export_study, optuna_distribution,
                            search_folder, table_cell, trial_status, tune_domain)
from reports.search import write_search_report
from reports.tables import summarize, to_markdown
from search_spaces import SEARCH_SPACES, TABLES, Choice, Float, Int, SearchSpace, overrides
from tests.conftest import REPO

SPACE = "pennisi2021.distillation"
N = 3


def test_killed_search_resumes_to_exactly_n_trials_and_its_study_loads(data_root, tmp_path, ray_address, capsys):
    out = tmp_path / "out"
    # Fashion-MNIST for the paper's CIFAR-10: its IDX files decode in a second, 60,000 JPEGs in ~20 s
    args = ["search", SPACE, "--trials", str(N), "--profile", "smoke", "--dataset", "fashion_mnist",
            "--data-root", str(data_root), "--out", str(out), "--address", ray_address]
    driver = subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=REPO, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              # a pause after each report keeps the trial alive to be killed: the smoke trials
                              # (LeNet) could all end between two polls, and the search with them (seen once)
                              env={**os.environ, "PYTHONPATH": str(REPO), EPOCH_DELAY_ENV: "3"})
    tune_dir = out / "search" / SPACE / "tune"
    deadline = time.time() + 300
    reported = []
    while time.time() < deadline and driver.poll() is None:  # kill once a trial has reported
        # a report's checkpoint folder appears as the trial reports; result.json may be written later, in a
        # buffer (on a quiet 2-core machine the whole search once ended before its first result.json had a byte)
        reported = ([*tune_dir.glob("*/checkpoint_*"), *(p for p in tune_dir.glob("*/result.json") if p.stat().st_size)]
                    if tune_dir.is_dir() else [])
        if reported:
            break
        time.sleep(0.5)
    assert reported and driver.poll() is None, "the search ended before any trial reported"
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    assert not (out / "search" / SPACE / "trials.parquet").exists()  # it did not get to the end

    # the rest in this process: a new one spends ~9 s importing torch and Ray
    capsys.readouterr()
    code = main([*args, "--resume"])
    resumed = capsys.readouterr()
    assert code == 0, resumed.out[-3000:] + resumed.err[-3000:]
    assert "resuming" in resumed.out
    assert f"trials {N}/{N} done, 0 running, 0 pending" in resumed.out  # the progress line, in a log
    trials = pd.read_parquet(out / "search" / SPACE / "trials.parquet")
    assert len(trials) == N and set(trials["status"]) <= {"ok", "stopped"}, trials[["status", "error"]]

    study = optuna.load_study(study_name=SPACE, storage=f"sqlite:///{out / 'search' / SPACE / 'optuna.db'}")
    assert len(study.trials) == N
    assert study.metric_names == [SEARCH_SPACES[SPACE].metric]  # optuna-dashboard showed "Objective 0"
    # the export agrees with Tune's state, trial by trial
    assert sorted(t.user_attrs["identity"] for t in study.trials) == sorted(trials["identity"])
    assert sorted(t.user_attrs["config_hash"] for t in study.trials) == sorted(trials["config_hash"])
    assert trials["identity"].is_unique
    for trial in study.trials:
        for name, p in SEARCH_SPACES[SPACE].params.items():
            assert p.low <= trial.params[name] <= p.high
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert finished and all(0 <= t.value <= 100 for t in finished)
    assert study.best_value == max(t.value for t in finished)
    # every trial used the cached stages: one pre-trained classifier per backbone (the search's AlexNet;
    # the GAN's FID may add its own feature classifier) and one GAN for the whole search
    stages = [json.loads((p / "MANIFEST.json").read_text()) for p in (out / "cache" / "stages").iterdir()
              if p.is_dir() and "." not in p.name]
    classifiers = [s["config"]["model"] for s in stages if s["kind"] == "classifier"]
    assert len(classifiers) == len(set(classifiers)) and [s["kind"] for s in stages].count("gan") == 1, stages

    assert main(["report", SPACE, "--out", str(out)]) == 0, capsys.readouterr().err
    folder = out / "reports" / SPACE
    md, page = (folder / "report.md").read_text(), (folder / "report.html").read_text()
    assert "Best config" in md and "--confirm-best" in md
    pictures = ["history.png", "slices.png"]
    ok = trials[trials["status"] == "ok"]
    if len(ok) >= 2 and any(ok[k].nunique() > 1 for k in SEARCH_SPACES[SPACE].params):
        pictures.append("importances.png")
    else:
        assert "Parameter importances need at least 2 finished trials" in md
    for name in pictures:
        assert (folder / name).stat().st_size > 5000 and f"({name})" in md and f"src='{name}'" in page

    # the best config over a seed, beside the paper's cell at that seed, as a run of Table 3
    capsys.readouterr()
    code = main(["search", SPACE, "--confirm-best", "--seeds", "1", "--data-root", str(data_root),
                 "--out", str(out), "--address", ray_address])
    confirm = capsys.readouterr()
    assert code == 0, confirm.out[-3000:] + confirm.err[-3000:]
    assert "trials 2/2 done, 0 running, 0 pending" in confirm.out
    best = best_trial(trials, SEARCH_SPACES[SPACE])  # ties (seen with LeNet at smoke): the first in Tune's order
    assert best["objective"] == trials.loc[trials["status"] == "ok", "objective"].max()
    params = {k: p.cast(best[k]) for k, p in SEARCH_SPACES[SPACE].params.items()}
    results = pd.read_parquet(out / "results.parquet")
    assert len(results) == 2 and set(results["status"]) == {"ok"}
    assert set(results["table"]) == {"pennisi2021.table3"}
    assert set(results["cell"]) == {"GAN distillation | Accuracy"}
    assert sorted(results["overrides"]) == sorted(["{}", json.dumps(params, sort_keys=True)])
    assert set(results["profile"]) == {"smoke"} and set(results["dataset"]) == {"fashion_mnist"}
    # `gansweep report pennisi2021.table3` shows them as two blocks (in process: its figures take seconds)
    table = TABLES["pennisi2021.table3"]
    text = to_markdown(table, summarize(table, results))
    assert "overridden, not the paper's cells: margin=" in text
    assert len(re.findall(r"^\| GAN distillation +\| ours +\| \d", text, re.M)) == 2  # one number per block


def test_a_trial_that_stopped_itself_early_finished_and_one_asha_stopped_did_not():
    assert trial_status({M.DONE_EPOCHS: 7, M.COMPLETE: 1}, None, epochs=30) == "ok"  # its own early stopping
    assert trial_status({M.DONE_EPOCHS: 30}, None, epochs=30) == "ok"
    assert trial_status({M.DONE_EPOCHS: 4}, None, epochs=30) == "stopped"  # ASHA
    assert trial_status({M.DONE_EPOCHS: 4, M.DIVERGED: 1}, None, epochs=30) == "diverged"
    assert trial_status({}, RuntimeError("boom"), epochs=30) == "error"


def _trials(rows):
    return pd.DataFrame([{"trial_id": str(i), "objective": None, "profile": "smoke", "dataset": "fashion_mnist",
                          "p_h": 0.5, "margin": 1.0, "p_r": 0.5, **r} for i, r in enumerate(rows)])


def test_confirm_best_plans_the_best_finished_config_and_the_papers_cell_per_seed():
    space = SEARCH_SPACES[SPACE]
    trials = _trials([{"status": "ok", "objective": 40.0, "p_h": 0.4},
                      {"status": "stopped", "objective": 90.0, "p_h": 0.9},  # ASHA-stopped: not a candidate
                      {"status": "ok", "objective": 60.0, "p_h": 0.65, "margin": 0.3, "p_r": 0.75}])
    planned = confirm_trials(space, trials, seeds=2)
    assert [(t.table, t.cell.name, t.profile, t.config.seed, t.config.dataset) for t in planned] == [
        ("pennisi2021.table3", "GAN distillation | Accuracy", "smoke", seed, "fashion_mnist")
        for seed in (0, 0, 1, 1)]
    assert [overrides(t) for t in planned] == [{}, {"p_h": 0.65, "margin": 0.3, "p_r": 0.75}] * 2
    # a larger budget than the search's, when asked
    assert {t.profile for t in confirm_trials(space, trials, seeds=1, profile="mini")} == {"mini"}


@pytest.mark.parametrize("case, args, message", [
    ("no search", [], "no search pennisi2021.distillation under"),
    ("no finished trial", ["stopped"], "has no finished trial with an objective"),
    ("no seed", ["ok", "--seeds", "0"], "--seeds 0: need at least one seed"),
])
def test_confirm_best_refuses_bad_input_in_one_line(tmp_path, capsys, case, args, message):
    out = tmp_path / "out"
    if args:
        folder = search_folder(out, SEARCH_SPACES[SPACE])
        folder.mkdir(parents=True)
        _trials([{"status": args[0], "objective": 50.0}]).to_parquet(folder / TRIALS_FILE)
    code = main(["search", SPACE, "--confirm-best", "--out", str(out), *args[1:]])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err


def test_report_says_why_it_draws_no_importances_with_one_finished_trial(tmp_path):
    space = SEARCH_SPACES[SPACE]
    trials = _trials([{"status": "ok", "objective": 40.0}, {"status": "stopped", "objective": 20.0, "p_h": 0.8}])
    trials = trials.assign(**{"curve": ['{"1": 40.0}', '{"1": 20.0}'], M.TEST_ACC_AT_BEST_VAL_ACC: [38.0, 19.0],
                              M.DONE_EPOCHS: [2, 1], "identity": ["a", "b"], "config_hash": ["ha", "hb"]})
    text, written = write_search_report(space, trials, tmp_path)
    assert "Parameter importances need at least 2 finished trials with different parameters (1 finished)." in text
    assert {p.name for p in written} >= {"history.png", "slices.png"} and not (tmp_path / "importances.png").exists()
    none = write_search_report(space, trials.assign(status="stopped"), tmp_path / "none")[0]
    assert "No trial finished with an objective yet: no plots." in none and "Best config" not in none
    # two finished trials of one objective (seen at converge: 82.4 and 82.4): fANOVA cannot fit them
    tied = write_search_report(space, trials.assign(status="ok", objective=82.4), tmp_path / "tied")[0]
    assert "Parameter importances need finished trials whose objectives differ (2 finished, all at 82.4)." in tied


# ---- search parameters: declarations, and every registered space through Tune, Optuna and the report ----


@pytest.mark.parametrize("make, message", [
    (lambda: Float(1.0, 0.5), "need numbers low < high"),
    (lambda: Float(0.0, 1.0, log=True), "a log scale needs low > 0"),
    (lambda: Float("0", 1.0), "need numbers low < high"),
    (lambda: Int(1.5, 4), "need integers low < high"),
    (lambda: Int(False, True), "need integers low < high"),
    (lambda: Int(3, 3), "need integers low < high"),
    (lambda: Choice(("on_the_fly",)), "at least two distinct values of one type"),
    (lambda: Choice(("a", "a")), "at least two distinct values of one type"),
    (lambda: Choice(("a", 1)), "at least two distinct values of one type"),
    (lambda: Choice((1, True)), "at least two distinct values of one type"),
    (lambda: Choice("ab"), "at least two distinct values of one type"),
    (lambda: Choice(([1, 2], [3, 4])), "at least two distinct values of one type"),
    (lambda: _space({"threshold": [0.1, 0.9]}), "threshold = [0.1, 0.9] is not a Float, Int, Choice or (low, high)"),
    (lambda: _space({}), "no parameters"),
])
def test_a_bad_search_parameter_declaration_is_one_clear_error(make, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make()


def test_search_parameter_declarations():
    assert _space({"threshold": (0.1, 0.9)}).params == {"threshold": Float(0.1, 0.9)}  # the (low, high) shorthand
    assert Choice(["a", "b"]).values == ("a", "b")  # a list is kept as a (hashable) tuple
    assert str(Float(1e-4, 1e-2, log=True)) == "[0.0001, 0.01] (log scale)"
    assert str(Int(1, 6)) == "{1, ..., 6}" and str(Choice(("on_the_fly", "fixed"))) == "{on_the_fly, fixed}"
    assert Int(1, 6).cast(np.int64(4)) == 4 and type(Int(1, 6).cast(np.int64(4))) is int
    assert Choice((True, False)).cast(np.bool_(False)) is False and Choice(("a", "b")).cast(np.str_("b")) == "b"
    # tune.randint's upper bound is exclusive, Int's inclusive: both ends are drawn
    assert set(tune_domain(Int(1, 3)).sample(size=200)) == {1, 2, 3}
    assert set(tune_domain(Choice((True, False))).sample(size=50)) == {True, False}
    logs = np.log10(tune_domain(Float(1e-4, 1e-2, log=True)).sample(size=2000))
    assert -4 <= logs.min() and logs.max() <= -2 and abs(np.median(logs) + 3) < 0.1  # uniform in log10


def test_a_search_parameter_that_does_not_fit_its_config_is_refused_before_anything_runs():
    space = SEARCH_SPACES["pham2019.filtering"]
    base = TABLES[space.table].config(space.cell, "smoke", 0)
    for name, p, message in [
        ("thresh", Float(0.1, 0.9), "SyntheticConfig has no field 'thresh' to search"),
        ("max_draws", Float(1.0, 8.0), "max_draws is int in SyntheticConfig, searched as Float [1, 8]"),
        ("threshold", Int(0, 1), "threshold is float in SyntheticConfig, searched as Int {0, ..., 1}"),
        ("source", Choice((0, 1)), "source is str in SyntheticConfig, searched as Choice {0, 1}"),
        ("threshold", Float(0.5, 1.0), "threshold = 1.0 of [0.5, 1] is not a valid config: threshold 1.0 is outside"),
        ("source", Choice(("fixed", "both")), "source = both of {fixed, both} is not a valid config"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            check_params(_space({name: p}), base)


@pytest.mark.parametrize("name", list(SEARCH_SPACES))
def test_every_search_space_fits_tune_optuna_its_table_and_its_report(name, tmp_path):
    """Each parameter: valid on the method's config; Tune's domain converts (through OptunaSearch's own
    conversion) to the distribution the exported study declares; values of each type survive Parquet, the
    study (sqlite), --confirm-best's overrides, and the report with its plots."""
    from ray.tune.search.optuna import OptunaSearch

    space = SEARCH_SPACES[name]
    table = TABLES[space.table]
    base = table.config(space.cell, "smoke", 0)
    check_params(space, base)
    assert table_cell(space).method == space.cell.method  # --confirm-best has a paper cell to run beside
    distributions = {k: optuna_distribution(p) for k, p in space.params.items()}
    assert OptunaSearch.convert_search_space({k: tune_domain(p) for k, p in space.params.items()}) == distributions

    values = [{k: _corner(p, i) for k, p in space.params.items()} for i in range(3)]
    trials = _fake_trials(values, objectives=[40.0, 60.0, 50.0])
    trials.to_parquet(tmp_path / TRIALS_FILE)
    trials = pd.read_parquet(tmp_path / TRIALS_FILE)  # numpy scalars back, as --confirm-best and reports read them
    export_study(trials, space, f"sqlite:///{tmp_path / 'optuna.db'}")
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert [t.params for t in study.trials] == values and all(t.distributions == distributions for t in study.trials)
    assert all(type(t.params[k]) is type(values[0][k]) for t in study.trials for k in space.params)

    best = confirm_trials(space, trials, seeds=1)[-1]
    assert overrides(best) == {k: v for k, v in values[1].items() if getattr(base, k) != v}
    assert all(type(getattr(best.config, k)) is type(getattr(base, k)) for k in space.params)

    text, written = write_search_report(space, trials, tmp_path / "report")
    assert all(f"{k} in {p}" in text for k, p in space.params.items())
    assert {p.name for p in written} >= {"history.png", "importances.png", "slices.png"}


def test_int_and_categorical_params_export_as_optunas_int_and_categorical_distributions(tmp_path):
    space = _space({"max_draws": Int(1, 8), "source": Choice(("on_the_fly", "fixed")),
                    "truncation": Float(0.5, 3.0, log=True)})
    trials = _fake_trials([{"max_draws": 8, "source": "fixed", "truncation": 0.5},
                           {"max_draws": 1, "source": "on_the_fly", "truncation": 2.5}], objectives=[55.0, None],
                          statuses=["ok", "stopped"])
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    export_study(trials, space, url)
    study = optuna.load_study(study_name=space.name, storage=url)
    done, stopped = study.trials
    assert done.distributions == {"max_draws": optuna.distributions.IntDistribution(1, 8),
                                  "source": optuna.distributions.CategoricalDistribution(("on_the_fly", "fixed")),
                                  "truncation": optuna.distributions.FloatDistribution(0.5, 3.0, log=True)}
    assert done.params == {"max_draws": 8, "source": "fixed", "truncation": 0.5} and done.value == 55.0
    assert stopped.state == optuna.trial.TrialState.PRUNED and stopped.params["source"] == "on_the_fly"
    assert type(done.params["max_draws"]) is int


def _space(params) -> SearchSpace:
    cell = SEARCH_SPACES["pham2019.filtering"].cell
    return SearchSpace("test.space", "slim2020.table1", cell, params, M.BEST_VAL_ACC)


def _corner(p, i: int):
    """Trial i's value of ``p``: its low end, its high end, then the middle (choices in turn)."""
    if isinstance(p, Choice):
        return p.values[i % len(p.values)]
    return p.cast([p.low, p.high, (p.low + p.high) / 2][i])


def _fake_trials(values, objectives, statuses=None) -> pd.DataFrame:
    """A trials table as harness.search.trials_table writes it, for ``values`` (one dict of params per trial)."""
    statuses = statuses or ["ok"] * len(values)
    return pd.DataFrame([{"trial_id": str(i), "status": status, **v, "objective": objective,
                          M.TEST_ACC_AT_BEST_VAL_ACC: objective, M.DONE_EPOCHS: 1,
                          "curve": json.dumps({"1": objective} if objective is not None else {}),
                          "config_hash": f"h{i}", "identity": f"id{i}", "profile": "smoke", "dataset": None}
                         for i, (v, objective, status) in enumerate(zip(values, objectives, statuses))])


def test_asha_waits_for_the_profiles_early_stopping_patience():
    from harness.search import grace_period

    base = TABLES["pennisi2021.table3"].config(SEARCH_SPACES["pennisi2021.distillation"].cell, "converge", 0)
    assert grace_period(base, base.planned_epochs) == base.patience == 8
    assert grace_period(dataclasses.replace(base, patience=0), 30) == 1  # no early stopping: ASHA from epoch 1
    assert grace_period(dataclasses.replace(base, patience=50), 30) == 30
