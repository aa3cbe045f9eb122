"""The stage cache: computed once under concurrency, verified by checksum, recomputed when corrupt."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import pytest

from harness.stages import stage, stage_key


def _slow_compute(log: Path):
    def compute(artifact: Path, work: Path) -> None:
        with open(log, "a") as f:
            f.write("computed\n")
        time.sleep(1.0)  # long enough that the other process asks while this one computes
        (artifact / "weights.bin").write_bytes(b"\x01" * 1000)
    return compute


def _worker(root: str, log: str, queue) -> None:
    st = stage(Path(root), "toy", {"lr": 0.1}, ("input-a",), _slow_compute(Path(log)))
    queue.put((str(st.folder), st.computed))


def test_concurrent_processes_compute_a_stage_once(tmp_path):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), str(tmp_path / "log"), queue)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert (tmp_path / "log").read_text().count("computed") == 1
    assert len({folder for folder, _ in results}) == 1
    assert sorted(computed for _, computed in results) == [False, True]


def test_corrupt_artifact_is_recomputed_with_a_warning(tmp_path):
    log = tmp_path / "log"
    first = stage(tmp_path, "toy", {"lr": 0.1}, (), _slow_compute(log))
    again = stage(tmp_path, "toy", {"lr": 0.1}, (), _slow_compute(log))
    assert first.computed and not again.computed and log.read_text().count("computed") == 1
    (first.folder / "weights.bin").write_bytes(b"\x02" * 1000)  # same size, other bytes
    with pytest.warns(RuntimeWarning, match="checksum"):
        healed = stage(tmp_path, "toy", {"lr": 0.1}, (), _slow_compute(log))
    assert healed.computed and log.read_text().count("computed") == 2
    assert (healed.folder / "weights.bin").read_bytes() == b"\x01" * 1000


def test_key_follows_config_and_inputs():
    assert stage_key("gan", {"lr": 1}, ("a",)) == stage_key("gan", {"lr": 1}, ("a",))
    assert stage_key("gan", {"lr": 1}, ("a",)) != stage_key("gan", {"lr": 2}, ("a",))
    assert stage_key("gan", {"lr": 1}, ("a",)) != stage_key("gan", {"lr": 1}, ("b",))
    assert stage_key("gan", {"lr": 1}, ("a",)) != stage_key("classifier", {"lr": 1}, ("a",))
