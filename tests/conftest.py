"""Shared fixtures: the real data root (prepared by `make test`) and a way to call the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.data import available

REPO = Path(__file__).resolve().parents[1]


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
    `gansweep run`): each run then connects in ~2 s instead of starting its own Ray (~10 s)."""
    ray = Path(sys.executable).parent / "ray"
    port = _free_port()
    # NOTE: Ray 2.60's `ray start` enables token authentication while a client's ray.init defaults to
    # none (seen: InvalidAuthToken); on loopback, for tests, both sides run without it.
    os.environ["RAY_AUTH_MODE"] = "disabled"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([str(ray), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                    "--num-cpus", str(os.cpu_count()), "--include-dashboard=false", "--disable-usage-stats"],
                   check=True, capture_output=True, env=env, cwd=REPO)
    yield f"127.0.0.1:{port}"
    subprocess.run([str(ray), "stop", "--force"], capture_output=True, env=env)


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
