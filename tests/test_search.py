"""An Optuna search through Ray Tune at the smoke profile, whose driver is killed mid-search: --resume
finishes it with exactly N trials, the exported study loads with optuna.load_study, and the report
renders its trials and the objective plot."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
import pandas as pd

from search_spaces import SEARCH_SPACES
from tests.conftest import REPO, gansweep

SPACE = "pennisi2021.distillation"
N = 3


def test_killed_search_resumes_to_exactly_n_trials_and_its_study_loads(data_root, tmp_path, ray_address):
    out = tmp_path / "out"
    # Fashion-MNIST for the paper's CIFAR-10: its IDX files decode in a second, 60,000 JPEGs in ~20 s
    args = ["search", SPACE, "--trials", str(N), "--profile", "smoke", "--dataset", "fashion_mnist",
            "--data-root", str(data_root), "--out", str(out), "--address", ray_address]
    driver = subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=REPO, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    tune_dir = out / "search" / SPACE / "tune"
    deadline = time.time() + 300
    reported = []
    while time.time() < deadline and driver.poll() is None:  # kill once a trial has reported
        reported = [p for p in tune_dir.glob("*/result.json") if p.stat().st_size > 0] if tune_dir.is_dir() else []
        if reported:
            break
        time.sleep(0.5)
    assert reported and driver.poll() is None, "the search ended before any trial reported"
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    assert not (out / "search" / SPACE / "trials.parquet").exists()  # it did not get to the end

    resumed = gansweep(*args, "--resume")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "resuming" in resumed.stdout
    trials = pd.read_parquet(out / "search" / SPACE / "trials.parquet")
    assert len(trials) == N and set(trials["status"]) <= {"ok", "stopped"}, trials[["status", "error"]]

    study = optuna.load_study(study_name=SPACE, storage=f"sqlite:///{out / 'search' / SPACE / 'optuna.db'}")
    assert len(study.trials) == N
    # the export agrees with Tune's state, trial by trial
    assert sorted(t.user_attrs["identity"] for t in study.trials) == sorted(trials["identity"])
    assert trials["identity"].is_unique
    for trial in study.trials:
        for name, (low, high) in SEARCH_SPACES[SPACE].params.items():
            assert low <= trial.params[name] <= high
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert finished and all(0 <= t.value <= 100 for t in finished)
    assert study.best_value == max(t.value for t in finished)
    # every trial used the cached stages: one pre-trained classifier and one GAN for the whole search
    stages = [p.name.split("-")[0] for p in (out / "cache" / "stages").iterdir() if p.is_dir() and "." not in p.name]
    assert stages.count("classifier") == 1 and stages.count("gan") == 1

    report = gansweep("report", SPACE, "--out", out)
    assert report.returncode == 0, report.stderr
    folder = out / "reports" / SPACE
    assert (folder / "objective.png").stat().st_size > 5000
    assert "Best config" in (folder / "report.md").read_text()
