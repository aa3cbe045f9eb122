"""A real multi-node Ray cluster on this one machine (``ray.cluster_utils.Cluster``: a head without
CPUs, worker nodes of 1 CPU each, joined with ``--address``): the node running a trial dies mid-run,
a trial dies inside a stage, and four trials share a GPU that a node declares but does not have.

Each case ends with the numbers of an uninterrupted run of the same seed (CPU). One cluster serves
the whole file (a Ray node costs seconds to start on 2 cores); the trials are LeNet cells of the
quickstart grid with smoke-sized budgets. 2 to 3 minutes on the shared 2-core test machine (about
75 s of CPU; the rest is waiting for cores and for Ray to notice a dead node).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from harness import metrics as M
from harness.checkpoint import CRASH_IN_STAGE_AFTER_EPOCH_ENV, EPOCH_DELAY_ENV
from tests.conftest import REPO

COMPARED = M.FINAL_METRICS + (M.IMAGES_SEEN, M.OPT_STEPS)

# Cells of the quickstart grid (a method's own row, not the compute-matched control), driven through
# harness.launch.run in a fresh driver process (as `gansweep run` does, but with budget overrides; early
# stopping off, so that epoch counts are fixed): argv = runs (JSON: [method, overrides, number of seeds] each,
# all in one Tune experiment), data root, out, address, gpus per trial.
DRIVER = """
import dataclasses, json, sys
from pathlib import Path
from harness import launch
from search_spaces import plan
runs, data_root, out, address, gpus = sys.argv[1:]
trials = [dataclasses.replace(t, config=dataclasses.replace(t.config, patience=0, **overrides))
          for method, overrides, seeds in json.loads(runs)
          for t in plan(["quickstart"], "smoke", seeds=seeds, methods=[method])
          if t.cell.row != "Baseline, compute-matched"]
launch.run(trials, ["quickstart"], "smoke", Path(data_root), Path(out),
           launch.Resources(address=address, gpus_per_trial=float(gpus)), verbose=0)
"""


def _driver(cluster, data_root, out, *runs, gpus=0.0, env=None) -> subprocess.Popen:
    """One driver process running every (method, overrides, seeds) of ``runs`` in one experiment: each
    driver costs ~8 core-seconds of imports and Ray start-up, so runs that can share one do."""
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, json.dumps(runs), str(data_root), str(out), cluster.address, str(gpus)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


def _started(driver: subprocess.Popen, out: Path, timeout: float = 120) -> subprocess.Popen:
    """``driver`` once its Tune experiment exists.

    NOTE: Tune stages a run's files under /tmp/ray/session_*/artifacts/<second>/<experiment name>/;
    two runs of the same table started in the same second on one cluster share that folder and each
    copies the other's trials into its --out (seen here). Tests start a second driver after this."""
    deadline = time.time() + timeout
    while time.time() < deadline and driver.poll() is None and not list(out.glob("tune/*/")):
        time.sleep(0.05)
    assert driver.poll() is None, driver.communicate()[0][-3000:]
    return driver


def _finish(driver: subprocess.Popen, timeout: float = 240) -> None:
    output, _ = driver.communicate(timeout=timeout)
    assert driver.returncode == 0, output[-4000:]


def _results(out: Path, method: str | None = None) -> list[list[dict]]:
    """Each trial's result.json lines (one per report, appended across restarts), of ``method``'s trials or all."""
    found = [[json.loads(line) for line in p.read_text().splitlines() if line.strip()]
             for p in sorted(out.glob("tune/*/*/result.json"))]
    return [lines for lines in found if method in (None, lines[0]["config"]["trial"]["method"])]


def _row(out: Path, method: str, seed: int = 0) -> pd.Series:
    rows = pd.read_parquet(out / "results.parquet").query("method == @method and seed == @seed")
    assert len(rows) == 1 and rows["status"].iloc[0] == "ok", rows[["cell", "status", "error"]]
    return rows.iloc[0]


def _same_numbers(a: pd.Series, b: pd.Series) -> None:
    """Every compared metric exactly equal, or missing in both (None in a run of one method, NaN in a run that
    also holds a method reporting it: one driver may run two methods here)."""
    for metric in COMPARED:
        x, y = a[metric], b[metric]
        assert (pd.isna(x) and pd.isna(y)) or x == y, (metric, x, y)


def _ppid(pid: int) -> int:
    # /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after its ")"
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _trial_process(trial_dir: Path) -> int:
    """The pid of the worker running a trial: Tune moves it into a working folder named like the
    trial's folder (``.../working_dirs/<trial folder>``)."""
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and os.readlink(proc / "cwd").endswith(f"/working_dirs/{trial_dir.name}"):
                return int(proc.name)
        except OSError:  # gone, or not ours to read
            continue
    raise AssertionError(f"no process runs trial {trial_dir.name}")


def _node_running(cluster, pid: int):
    """The cluster node whose raylet started process ``pid`` (Ray workers are its children)."""
    raylets = {n.all_processes["raylet"][0].process.pid: n for n in cluster.list_all_nodes()}
    while pid > 1:
        if pid in raylets:
            return raylets[pid]
        pid = _ppid(pid)
    raise AssertionError("the trial's process belongs to no node of the test cluster")


@pytest.fixture(scope="module")
def cluster():
    """A head node with no CPUs (it schedules nothing) and two worker nodes of 1 CPU each."""
    from ray.cluster_utils import Cluster

    with pytest.MonkeyPatch.context() as env:
        # NOTE: Ray 2.60 nodes turn token authentication on unless told otherwise (see conftest.py);
        # workers inherit PYTHONPATH from their raylet, so they import this checkout.
        env.setenv("RAY_AUTH_MODE", "disabled")
        env.setenv("PYTHONPATH", str(REPO))
        cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 0, "include_dashboard": False,
            # A dead node is noticed within ~5 s (default: 5 missed checks of 3 s, after a 5 s grace).
            "_system_config": {"health_check_initial_delay_ms": 0, "health_check_period_ms": 1000,
                               "health_check_failure_threshold": 5}})
        try:
            for _ in range(2):
                cluster.add_node(num_cpus=1)
            yield cluster
        finally:
            cluster.shutdown()  # only this cluster's processes (never `ray stop`)


# A baseline budget of ~1 s per epoch here: the node-kill test's trial is still running after epoch 1.
BASELINE = {"epochs": 4, "max_batches_per_epoch": 30}
DISTILLATION = {"epochs": 4}  # the classifier stage has an epoch 3 to crash after; the GAN stage (2 epochs) has not


@pytest.fixture(scope="module")
def four_on_a_gpu(cluster, data_root, tmp_path_factory) -> Path:
    """The --out of one driver: four baseline trials (seeds 0-3) of 0.25 GPU on a node declaring one GPU.

    Its seed 0 is also the uninterrupted run the node-kill test compares its trial with (the same config;
    the CPU either way): a driver and a trial process fewer than a reference run of its own (~10 core-s).
    4 trials of ~5 s each when sharing the 2 cores, plus 3 s after each of their 4 reports: their start-up
    (a fresh worker process each) was spread over ~2 s on a quiet machine and over 4.5 s on a loaded one,
    where without the pause the first trial ended before the last started."""
    out = tmp_path_factory.mktemp("gpu")
    gpu_node = cluster.add_node(num_cpus=4, num_gpus=1)
    try:
        _finish(_driver(cluster, data_root, out, ("baseline", BASELINE, 4), gpus=0.25, env={EPOCH_DELAY_ENV: "3"}))
    finally:
        cluster.remove_node(gpu_node)
    return out


@pytest.fixture(scope="module")
def node_killed(cluster, data_root, four_on_a_gpu, tmp_path_factory) -> tuple[Path, int]:
    """(its --out, the killed pid): one driver runs a baseline trial and the uninterrupted gan_distillation
    trial the stage-crash test compares with, one on each 1-CPU node; the node running the baseline trial
    is removed mid-epoch (its raylet and workers killed, as a pre-empted machine) and a replacement added.
    (One driver for both: ~8 core-s of driver start-up fewer.)"""
    out = tmp_path_factory.mktemp("killed")
    killed = _started(_driver(cluster, data_root, out, ("baseline", BASELINE, 1), ("gan_distillation", DISTILLATION, 1)),
                      out)
    # NOTE: the worker writes each checkpoint before Tune's driver logs the epoch (result.json lagged
    # ~2 s here, time enough for the next epoch): wait for the baseline trial's first checkpoint itself.
    deadline, first = time.time() + 180, []
    while time.time() < deadline and killed.poll() is None and not first:
        first = list(out.glob("tune/*/quickstart_Baseline_LeNet_s0_*/checkpoint_000000"))
        time.sleep(0.05)
    assert first and killed.poll() is None, killed.communicate()[0][-3000:]
    pid = _trial_process(first[0].parent)
    cluster.remove_node(_node_running(cluster, pid), allow_graceful=False)  # in epoch 2
    cluster.add_node(num_cpus=1)  # a replacement arrives; the restarted trial goes wherever a CPU is free
    _finish(killed)
    return out, pid


def test_trial_resumes_on_another_node_when_its_node_dies(node_killed, four_on_a_gpu):
    """The node running a trial is removed mid-epoch: the trial restarts on another node from its last
    checkpoint and ends with the numbers of an uninterrupted run of the same seed and config (seed 0 of the
    four-trial GPU run, on the CPU)."""
    out, pid = node_killed
    (lines,) = _results(out, "baseline")
    assert lines[0]["pid"] == pid and lines[-1]["pid"] != pid and lines[-1][M.EPOCH] == 4
    resumed = [r for r in lines if r["pid"] != pid]
    assert resumed[0][M.EPOCH] > 1  # from a checkpoint, not from scratch
    a, b = _row(four_on_a_gpu, "baseline", seed=0), _row(out, "baseline")
    assert a[M.RESTARTS] == 0 and b[M.RESTARTS] == 1 and b[M.DONE_EPOCHS] == 4
    _same_numbers(a, b)


def _tune_failures(out: Path, method: str) -> int:
    """How often Tune restarted the run's ``method`` trial (from its experiment state)."""
    (state,) = out.glob("tune/*/experiment_state-*.json")
    (trial,) = [t for t in json.loads(state.read_text())["trial_data"]
                if json.loads(t[0])["config"]["trial"]["method"] == method]
    return json.loads(trial[1])["num_failures"]


def test_trial_killed_inside_a_stage_resumes_the_stage(cluster, data_root, tmp_path, node_killed):
    """A gan_distillation trial dies inside the pre-trained classifier stage it computes in its folder
    checkpointer (right after epoch 3 of 4): Tune restarts it, the stage resumes from its ``.partial``
    work folder at epoch 4, and the trial ends with the numbers of an uninterrupted run (the node-kill
    test's driver ran it, on the node that was not removed). The GAN stage (2 epochs at smoke) has no
    epoch 3, so it does not crash."""
    clean, _ = node_killed
    crashed = _driver(cluster, data_root, tmp_path / "crashed", ("gan_distillation", DISTILLATION, 1),
                      env={CRASH_IN_STAGE_AFTER_EPOCH_ENV: "3"})
    _finish(crashed)

    # the variable reached the worker through the driver's runtime_env: the trial died once
    assert _tune_failures(tmp_path / "crashed", "gan_distillation") == 1
    assert _tune_failures(clean, "gan_distillation") == 0
    # the classifier stage resumed from its work folder at epoch 4 instead of starting over
    (stage,) = (tmp_path / "crashed" / "cache" / "stages").glob("classifier-*/classifier.pt")
    fitted = torch.load(stage, weights_only=False)
    assert fitted["cost"][M.RESTARTS] == 1 and [r[M.EPOCH] for r in fitted["history"]] == [1, 2, 3, 4]
    assert not list((tmp_path / "crashed" / "cache" / "stages").glob("*.partial"))
    _same_numbers(_row(clean, "gan_distillation"), _row(tmp_path / "crashed", "gan_distillation"))


def test_fractional_gpus_pack_four_trials_on_a_gpu_the_node_does_not_have(cluster, four_on_a_gpu):
    """A node declaring one GPU (this machine has none) takes four trials of 0.25 GPU at once; each
    runs on the CPU after one warning line instead of failing."""
    trials = _results(four_on_a_gpu)
    assert len(trials) == 4
    # Each trial's span: from its trainable's start (first report minus its first iteration's time)
    # to its last report. Four trials ran at once iff some instant lies inside all four spans.
    starts = [lines[0]["timestamp"] - lines[0]["time_this_iter_s"] for lines in trials]
    ends = [lines[-1]["timestamp"] for lines in trials]
    assert max(starts) < min(ends), (starts, ends)
    rows = pd.read_parquet(four_on_a_gpu / "results.parquet")
    assert len(rows) == 4 and set(rows["status"]) == {"ok"} and set(rows[M.DEVICE]) == {"cpu"}
    # one warning line per trial process, in the workers' logs
    logs = Path(cluster.head_node.get_session_dir_path()) / "logs"
    pids = {lines[0]["pid"] for lines in trials}
    warned = [line for f in logs.glob("worker-*.err") if any(f.name.endswith(f"-{p}.err") for p in pids)
              for line in f.read_text().splitlines() if "but torch sees no CUDA device" in line]
    assert len(warned) == len(pids), warned


def test_pick_device_warns_once_and_uses_the_cpu(monkeypatch, capsys):
    """Given a GPU slot (CUDA_VISIBLE_DEVICES set, as Ray sets it) where torch sees no CUDA: the CPU,
    and one warning line however often it is asked."""
    from harness import checkpoint

    assert not torch.cuda.is_available()  # this project has no GPU machine
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setattr(checkpoint, "_warned_no_cuda", False)
    assert checkpoint.pick_device() == checkpoint.pick_device() == torch.device("cpu")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gansweep: warning: Ray assigned GPU 0"), err


def test_gpus_per_trial_without_any_gpu_is_one_line(tmp_path, capsys):
    """Locally, with no GPU Ray could give (none here), `--gpus-per-trial` would wait forever: refused
    before Ray starts, one line, exit code 2, nothing written."""
    from harness.cli import main

    assert main(["run", "quickstart", "--profile", "smoke", "--gpus-per-trial", "0.25", "--out",
                 str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Ray finds no GPU on this machine" in err[0], err
    assert not (tmp_path / "out").exists()
