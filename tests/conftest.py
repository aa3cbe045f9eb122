"""Shared fixtures: the real data root (prepared by `make test`) and a way to call the real CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pandas as pd

from harness.data import available
from search_spaces import TABLES

REPO = Path(__file__).resolve().parents[1]


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook, which reads the mark into the test's id
def pytest_collection_modifyitems(items):
    """Every test that reads the shared smoke run (the `smoke` fixture, directly or through another fixture) is
    in one xdist group: `make test` runs them on one worker, in order, after one smoke run, and every other
    test on the other worker. (Without the mark each worker would run the whole smoke fixture.) They come
    first: the group is the longest unit of work (~4 of the suite's ~8 minutes), so it starts at once."""
    uses_smoke = {item: "smoke" in getattr(item, "fixturenames", ()) for item in items}
    for item, marked in uses_smoke.items():
        if marked:
            item.add_marker(pytest.mark.xdist_group("smoke"))
    items.sort(key=lambda item: not uses_smoke[item])  # stable: each file's order is kept


@pytest.fixture(scope="session")
def data_root() -> Path:
    """``$GANSWEEP_DATA`` (the Makefile sets it to ./data and prepares Fashion-MNIST and CIFAR-10)."""
    root = Path(os.environ.get("GANSWEEP_DATA", REPO / "data"))
    for name in ("fashion_mnist", "cifar10"):
        assert available(name, root), f"{name} is not prepared under {root}: run `make data-test`"
    return root


def gansweep(*args: str, env: dict | None = None, cwd: Path = REPO, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real command line in a fresh process (as a user would) and capture its output."""
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout, env=env)


@pytest.fixture(scope="session")
def ray_address(tmp_path_factory) -> str:
    """One local Ray head node for the whole session, joined with `--address` (the cluster path of
    `gansweep run`): each run then connects in ~2 s instead of starting its own Ray (~10 s).

    NOTE: the head runs as `ray start --block` in its own process group, and is stopped by signalling
    that group: `ray stop` would stop every Ray on the machine, other sessions' and CI's included
    (seen: a concurrent test session's `ray stop --force` killed a running grid's GCS)."""
    ray = Path(sys.executable).parent / "ray"
    port = _free_port()
    # NOTE: Ray 2.60's `ray start` enables token authentication while a client's ray.init defaults to
    # none (seen: InvalidAuthToken); on loopback, for tests, both sides run without it.
    os.environ["RAY_AUTH_MODE"] = "disabled"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log = open(tmp_path_factory.mktemp("ray-head") / "ray-start.log", "w")
    head = subprocess.Popen([str(ray), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}",
                             "--num-cpus", str(os.cpu_count()), "--include-dashboard=false", "--disable-usage-stats"],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True)
    deadline = time.time() + 120
    while "will now block forever" not in Path(log.name).read_text():
        assert head.poll() is None and time.time() < deadline, Path(log.name).read_text()[-3000:]
        time.sleep(0.2)
    yield f"127.0.0.1:{port}"
    _stop_group(head)
    log.close()


def _stop_group(process: subprocess.Popen) -> None:
    """SIGTERM the group's leader (`ray start --block` then stops its node in ~2 s; signalling the whole
    group instead made it wait 30 s for processes already gone), then SIGKILL what is left of the group."""
    try:
        process.terminate()
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def shared_out(tmp_path_factory) -> Path:
    """One --out for the table runs, so the CIFAR-10 tensor cache is decoded once per session."""
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's in-process tests (the machine's 2 cores are shared), restored
    afterwards for the other test files."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


PAPER_TABLES = [n for n in TABLES if n != "quickstart"]


def _stage_folders(out):
    """Finished stage artifacts (<kind>-<key>-<code>; work folders and locks have a dot in their names)."""
    root = out / "cache" / "stages"
    return {p.name for p in root.iterdir() if p.is_dir() and "." not in p.name} if root.is_dir() else set()


def _check(result, what):
    assert result.returncode == 0, f"{what}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="session")
def smoke(data_root, shared_out, ray_address):
    """Every registered table at smoke, one seed, in two runs sharing one --out (and so one tensor cache and
    one stage cache), then one report of them all; tests/test_run.py and tests/test_determinism.py read it:

    1. `run quickstart` on a new local Ray of its own: the path `make run` takes.
    2. `run quickstart <every paper table> --resume` on the session's Ray head (`--address`), with a relative
       --out as a user types it (trials run in other working directories): the quickstart's trials are
       already in and its finished experiment is not restored; the paper tables' trials run.

    (Until 2026-12-02 a run of the quickstart's seed 1 came between them: its driver and two Ray workers
    cost ~25 core-seconds, each process importing torch and Ray; the stop test resumes a plan with one more
    seed.)
    """
    common = ("--profile", "smoke", "--data-root", data_root, "--seeds", 1)
    first = _check(gansweep("run", "quickstart", *common, "--out", shared_out), "quickstart")
    before = _stage_folders(shared_out)
    second = _check(gansweep("run", "quickstart", *PAPER_TABLES, *common, "--resume", "--out", shared_out.name,
                             "--address", ray_address, cwd=shared_out.parent), "quickstart and the paper tables")
    report = _check(gansweep("report", *TABLES, "--out", shared_out), "report")
    return {"runs": (first, second), "report": report, "stages_before": before,
            "stages_after": _stage_folders(shared_out), "results": pd.read_parquet(shared_out / "results.parquet"),
            "out": shared_out}
