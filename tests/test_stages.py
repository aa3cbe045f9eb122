"""The stage cache: computed once under concurrency (waiting trials say so, and give up after their limit),
verified by checksum, recomputed when corrupt, keyed by the code that computes it."""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from pathlib import Path

import pytest

from harness.identity import code_version
from harness.stages import StageStore, StageTimeout, any_order, stage, stage_key
from harness.storage import file_lock


def _slow_compute(log: Path):
    def compute(artifact: Path, work: Path) -> None:
        with open(log, "a") as f:
            f.write("computed\n")
        (artifact / "weights.bin").write_bytes(b"\x01" * 1000)
    return compute


def _waiting_compute(log: Path, waiting_logs: list[Path], others: int):
    """Computes only once every other process has said it is waiting for this stage (so the test
    proves they were blocked while it computed, with no sleep racing process start-up)."""
    def compute(artifact: Path, work: Path) -> None:
        deadline = time.time() + 120
        while sum("waiting for stage" in p.read_text() for p in waiting_logs if p.exists()) < others:
            assert time.time() < deadline, "the other trials never waited for the stage"
            time.sleep(0.05)
        _slow_compute(log)(artifact, work)
    return compute


def _worker(root: str, log: str, me: int, n: int, barrier, queue) -> None:
    import contextlib
    import io

    logs = [Path(root) / f"stdout-{i}" for i in range(n)]
    buffer = io.StringIO()

    class Tee(io.TextIOBase):  # what the process prints, visible to the others as it is printed
        def write(self, text):
            buffer.write(text)
            logs[me].write_text(buffer.getvalue())
            return len(text)

    barrier.wait()  # all four ask for the stage at once
    with contextlib.redirect_stdout(Tee()):
        st = stage(Path(root) / "stages", "toy", {"lr": 0.1}, ("input-a",),
                   _waiting_compute(Path(log), [p for i, p in enumerate(logs) if i != me], n - 1))
    queue.put((str(st.folder), st.computed))


def test_concurrent_processes_compute_a_stage_once(tmp_path):
    n = 4
    ctx = mp.get_context("spawn")
    queue, barrier = ctx.Queue(), ctx.Barrier(n)
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), str(tmp_path / "log"), i, n, barrier, queue))
             for i in range(n)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert (tmp_path / "log").read_text().count("computed") == 1
    assert len({folder for folder, _ in results}) == 1
    assert sorted(computed for _, computed in results) == [False] * (n - 1) + [True]
    # the three that waited said what they waited for
    said = [(tmp_path / f"stdout-{i}").read_text() for i in range(n) if (tmp_path / f"stdout-{i}").exists()]
    assert sum("waiting for stage toy-" in text for text in said) == n - 1


def _held(root: Path, kind: str):
    """The lock another trial would hold while computing the stage ``kind`` (config {"lr": 0.1})."""
    return file_lock(root / f"{kind}-{stage_key(kind, {'lr': 0.1}, ())}-{code_version(__name__)}")


def test_a_trial_waiting_too_long_for_a_stage_gives_up_with_a_clear_error(tmp_path, capsys):
    with _held(tmp_path, "toy"):  # another trial is computing it
        with pytest.raises(StageTimeout, match="waiting for stage toy-"):
            stage(StageStore(tmp_path, wait_timeout_s=0.3), "toy", {"lr": 0.1}, (), _slow_compute(tmp_path / "log"))
    assert "waiting for stage toy-" in capsys.readouterr().out
    assert not (tmp_path / "log").exists()


def test_a_stage_computed_by_other_code_is_recomputed_or_reused_only_when_asked(tmp_path):
    log = tmp_path / "log"
    old = _slow_compute(log)
    old.__module__ = "harness.gans"  # as if another version of the code had computed it
    first = stage(tmp_path, "toy", {"lr": 0.1}, (), old)
    assert first.computed and not first.stale
    stale = stage(StageStore(tmp_path, reuse_stale=True), "toy", {"lr": 0.1}, (), _slow_compute(log))
    assert not stale.computed and stale.stale and stale.folder == first.folder
    assert log.read_text().count("computed") == 1
    fresh = stage(tmp_path, "toy", {"lr": 0.1}, (), _slow_compute(log))
    assert fresh.computed and not fresh.stale and fresh.folder != first.folder
    assert log.read_text().count("computed") == 2


def test_a_stage_built_on_a_recomputed_stage_is_recomputed_too(tmp_path):
    """A stage names its input stages by :attr:`Stage.ref` (key and code version): when other code recomputes the
    input (Slim's sample weights), the stage built on it (the next conditioned GAN) is not found under its old
    identity and reused; the old input's ref (as a --reuse-stale-stages run names it) finds the old dependent."""
    log = tmp_path / "log"
    old = _slow_compute(log)
    old.__module__ = "harness.gans"  # the input computed by another version of the code
    weights_old = stage(tmp_path, "weights", {"k": 1}, (), old)
    gan_old = stage(tmp_path, "gan", {"seed": 1}, (weights_old.ref,), _slow_compute(log))
    weights_new = stage(tmp_path, "weights", {"k": 1}, (), _slow_compute(log))
    assert weights_new.key == weights_old.key and weights_new.ref != weights_old.ref
    gan_new = stage(tmp_path, "gan", {"seed": 1}, (weights_new.ref,), _slow_compute(log))
    assert gan_new.computed and gan_new.folder != gan_old.folder
    again = stage(tmp_path, "gan", {"seed": 1}, (weights_old.ref,), _slow_compute(log))  # e.g. a stale reuse
    assert not again.computed and again.folder == gan_old.folder
    assert log.read_text().count("computed") == 4


def test_rerun_stages_recomputes_once_per_run(tmp_path):
    log = tmp_path / "log"
    stage(tmp_path, "toy", {"lr": 0.1}, (), _slow_compute(log))
    again = StageStore(tmp_path, run="run-2", recompute=True)
    assert stage(again, "toy", {"lr": 0.1}, (), _slow_compute(log)).computed
    assert not stage(again, "toy", {"lr": 0.1}, (), _slow_compute(log)).computed  # once per run
    assert log.read_text().count("computed") == 2


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


def test_independent_stages_run_in_the_order_that_finds_one_free(tmp_path):
    """Stage "a" is held by another trial: any_order computes "b" first instead of idling, then "a" once
    the other trial let go (it lets go inside b's compute: no sleep, no race); results come in the
    order given. With every branch held, it waits on the first (and gives up after its limit)."""
    order = []

    def branch(kind, then=None, slow=False):
        def compute(artifact: Path, work: Path) -> None:
            order.append(kind)
            (artifact / "x").write_text(kind)
            if then:
                then()
        store = StageStore(tmp_path, wait_timeout_s=60 if slow else 0.3)
        return lambda: stage(store, kind, {"lr": 0.1}, (), compute)

    other = _held(tmp_path, "a")
    other.acquire()
    a, b = any_order(branch("a"), branch("b", then=other.release))
    assert order == ["b", "a"] and (a.kind, b.kind) == ("a", "b") and a.computed and b.computed
    order.clear()
    assert [s.computed for s in any_order(branch("a"), branch("b"))] == [False, False] and not order

    with _held(tmp_path, "c"), _held(tmp_path, "d"):
        with pytest.raises(StageTimeout, match="waiting for stage c-"):
            any_order(branch("c"), branch("d"))
    assert not order

    # every branch held, then let go (by another thread, whenever): it waits, then gets both
    held, go = threading.Event(), threading.Event()

    def other_trial():
        with _held(tmp_path, "e"), _held(tmp_path, "f"):
            held.set()
            go.wait(timeout=60)

    thread = threading.Thread(target=other_trial)
    thread.start()
    held.wait(timeout=60)
    threading.Timer(0.5, go.set).start()
    e, f = any_order(branch("e", slow=True), branch("f", slow=True))
    thread.join()
    assert (e.kind, f.kind) == ("e", "f") and e.computed and f.computed and sorted(order) == ["e", "f"]
