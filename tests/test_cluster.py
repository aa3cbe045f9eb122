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

# One cell of the quickstart grid (the method's own row, not the compute-matched control), driven through
# harness.launch.run in a fresh driver process (as `gansweep run` does, but with budget overrides; early
# stopping off, so that epoch counts are fixed): argv = method, overrides (JSON), data root, out, address,
# gpus per trial, number of seeds.
DRIVER = """
import dataclasses, json, sys
from pathlib import Path
from harness import launch
from search_spaces import plan
method, overrides, data_root, out, address, gpus, seeds = sys.argv[1:]
trials = [dataclasses.replace(t, config=dataclasses.replace(t.config, patience=0, **json.loads(overrides)))
          for t in plan(["quickstart"], "smoke", seeds=int(seeds), methods=[method])
          if t.cell.row != "Baseline, compute-matched"]
launch.run(trials, ["quickstart"], "smoke", Path(data_root), Path(out),
           launch.Resources(address=address, gpus_per_trial=float(gpus)), verbose=0)
"""


def _driver(cluster, data_root, out, method="baseline", overrides=None, gpus=0.0, seeds=1,
            env=None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, method, json.dumps(overrides or {}), str(data_root), str(out),
         cluster.address, str(gpus), str(seeds)],
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


def _results(out: Path) -> list[list[dict]]:
    """Each trial's result.json lines (one per report, appended across restarts)."""
    return [[json.loads(line) for line in p.read_text().splitlines() if line.strip()]
            for p in sorted(out.glob("tune/*/*/result.json"))]


def _row(out: Path) -> pd.Series:
    rows = pd.read_parquet(out / "results.parquet")
    assert len(rows) == 1 and rows["status"].iloc[0] == "ok", rows[["cell", "status", "error"]]
    return rows.iloc[0]


def _same_numbers(a: pd.Series, b: pd.Series) -> None:
    for metric in COMPARED:
        assert pd.Series([a[metric]]).equals(pd.Series([b[metric]])), (metric, a[metric], b[metric])


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


def test_trial_resumes_on_another_node_when_its_node_dies(cluster, data_root, tmp_path):
    """The node running a trial is removed mid-epoch (its raylet and workers killed, as a pre-empted
    machine): the trial restarts on another node from its last checkpoint and ends with the numbers
    of an uninterrupted run of the same seed, run at the same time on the other node."""
    budget = {"epochs": 4, "max_batches_per_epoch": 30}  # ~1 s per epoch here: still running after epoch 1
    killed = _started(_driver(cluster, data_root, tmp_path / "killed", overrides=budget), tmp_path / "killed")
    clean = _driver(cluster, data_root, tmp_path / "clean", overrides=budget)
    # NOTE: the worker writes each checkpoint before Tune's driver logs the epoch (result.json lagged
    # ~2 s here, time enough for the next epoch): wait for the first checkpoint itself.
    deadline, first = time.time() + 180, []
    while time.time() < deadline and killed.poll() is None and not first:
        first = list((tmp_path / "killed").glob("tune/*/*/checkpoint_000000"))
        time.sleep(0.05)
    assert first and killed.poll() is None, killed.communicate()[0][-3000:]
    pid = _trial_process(first[0].parent)
    cluster.remove_node(_node_running(cluster, pid), allow_graceful=False)  # in epoch 2
    cluster.add_node(num_cpus=1)  # a replacement arrives; the restarted trial goes wherever a CPU is free
    _finish(killed)
    _finish(clean)

    (lines,) = _results(tmp_path / "killed")
    assert lines[0]["pid"] == pid and lines[-1]["pid"] != pid and lines[-1][M.EPOCH] == 4
    resumed = [r for r in lines if r["pid"] != pid]
    assert resumed[0][M.EPOCH] > 1  # from a checkpoint, not from scratch
    a, b = _row(tmp_path / "clean"), _row(tmp_path / "killed")
    assert a[M.RESTARTS] == 0 and b[M.RESTARTS] == 1 and b[M.DONE_EPOCHS] == 4
    _same_numbers(a, b)


def _tune_failures(out: Path) -> int:
    """How often Tune restarted the run's trial (from its experiment state)."""
    (state,) = out.glob("tune/*/experiment_state-*.json")
    (trial,) = json.loads(state.read_text())["trial_data"]
    return json.loads(trial[1])["num_failures"]


def test_trial_killed_inside_a_stage_resumes_the_stage(cluster, data_root, tmp_path):
    """A gan_distillation trial dies inside the pre-trained classifier stage it computes in its folder
    checkpointer (right after epoch 3 of 4): Tune restarts it, the stage resumes from its ``.partial``
    work folder at epoch 4, and the trial ends with the numbers of an uninterrupted run (run at the
    same time on the other node). The GAN stage (2 epochs at smoke) has no epoch 3, so it does not crash."""
    budget = {"epochs": 4}
    crashed = _started(_driver(cluster, data_root, tmp_path / "crashed", "gan_distillation", overrides=budget,
                               env={CRASH_IN_STAGE_AFTER_EPOCH_ENV: "3"}), tmp_path / "crashed")
    clean = _driver(cluster, data_root, tmp_path / "clean", "gan_distillation", overrides=budget)
    _finish(crashed)
    _finish(clean)

    # the variable reached the worker through the driver's runtime_env: the trial died once
    assert _tune_failures(tmp_path / "crashed") == 1
    assert _tune_failures(tmp_path / "clean") == 0
    # the classifier stage resumed from its work folder at epoch 4 instead of starting over
    (stage,) = (tmp_path / "crashed" / "cache" / "stages").glob("classifier-*/classifier.pt")
    fitted = torch.load(stage, weights_only=False)
    assert fitted["cost"][M.RESTARTS] == 1 and [r[M.EPOCH] for r in fitted["history"]] == [1, 2, 3, 4]
    assert not list((tmp_path / "crashed" / "cache" / "stages").glob("*.partial"))
    _same_numbers(_row(tmp_path / "clean"), _row(tmp_path / "crashed"))


def test_fractional_gpus_pack_four_trials_on_a_gpu_the_node_does_not_have(cluster, data_root, tmp_path):
    """A node declaring one GPU (this machine has none) takes four trials of 0.25 GPU at once; each
    runs on the CPU after one warning line instead of failing."""
    gpu_node = cluster.add_node(num_cpus=4, num_gpus=1)
    try:
        # 4 trials (lenet, seeds 0-3) of ~5 s each when sharing the 2 cores, plus 3 s after each of their 3
        # reports: their start-up (a fresh worker process each) was spread over ~2 s on a quiet machine and
        # over 4.5 s on a loaded one, where without the pause the first trial ended before the last started
        driver = _driver(cluster, data_root, tmp_path, gpus=0.25, seeds=4,
                         overrides={"epochs": 3, "max_batches_per_epoch": 40}, env={EPOCH_DELAY_ENV: "3"})
        _finish(driver)
    finally:
        cluster.remove_node(gpu_node)
    trials = _results(tmp_path)
    assert len(trials) == 4
    # Each trial's span: from its trainable's start (first report minus its first iteration's time)
    # to its last report. Four trials ran at once iff some instant lies inside all four spans.
    starts = [lines[0]["timestamp"] - lines[0]["time_this_iter_s"] for lines in trials]
    ends = [lines[-1]["timestamp"] for lines in trials]
    assert max(starts) < min(ends), (starts, ends)
    rows = pd.read_parquet(tmp_path / "results.parquet")
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
