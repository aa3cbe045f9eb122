"""The stage cache: a stage's output (a pre-trained classifier, a hard/easy split, a pre-trained GAN)
stored under its identity (its config, its inputs' keys and the version of the code that computes it),
computed once.

    <out>/cache/stages/<kind>-<key>-<code>/           the artifact: files + MANIFEST.json (sha256 of each)
    <out>/cache/stages/<kind>-<key>-<code>.partial/   work in progress: per-epoch checkpoints of the compute
    <out>/cache/stages/<kind>-<key>-<code>.lock       held while one trial checks or computes the stage

``key`` hashes the kind, the config and the inputs (data fingerprints, and the :attr:`Stage.ref` of the stages it is
computed from: their key and code version);
``code`` is :func:`harness.identity.code_version` of the module that defines ``compute``. A stage
computed by other code is therefore not found; ``--reuse-stale-stages`` reuses it anyway (the newest
intact one of the same key), and the trial counts it as stale so that its report says so.
``--rerun stages`` recomputes every stage the run touches, once per run (the manifest records the run).

A stage is computed under a file lock, so concurrent trials (also on other hosts, when --out is on
shared storage) compute it once: the others wait, saying what they wait for, and give up with
:class:`StageTimeout` after ``wait_timeout_s``. A trial that needs independent stages (Pennisi's
pre-trained classifier and pre-trained GAN) runs them through :func:`any_order`, so it computes the
one nobody holds instead of idling behind another trial's lock. The artifact folder appears by one rename, so it is
whole or absent; it is verified against its manifest when read, and a corrupt artifact is recomputed
with a warning. A compute that dies leaves its ``.partial`` folder, where the next attempt resumes from
the last epoch checkpoint.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from filelock import Timeout

from harness.config import to_dict
from harness.identity import code_version
from harness.storage import atomic_write, file_lock

MANIFEST = "MANIFEST.json"
WAIT_LOG_EVERY_S = 60.0  # how often a trial waiting on another trial's stage says so


class StageTimeout(RuntimeError):
    """A trial waited longer than its limit for a stage another trial was computing."""


class StageBusy(Exception):
    """Inside :func:`any_order`: another trial holds the stage's lock (the branch is tried again later)."""


# True while any_order tries a branch: a stage held by another trial raises StageBusy instead of waiting.
_NO_WAIT = contextvars.ContextVar("gansweep_stage_no_wait", default=False)


@dataclass(frozen=True)
class StageStore:
    """Where a run's stages live, and how the run treats them (from the command line)."""

    root: Path
    run: str = ""  # the run's id; with ``recompute``, a stage not written by this run is computed again
    recompute: bool = False  # --rerun stages
    reuse_stale: bool = False  # --reuse-stale-stages: reuse a stage of the same key computed by other code
    wait_timeout_s: float = 24 * 3600.0  # give up waiting on another trial's stage after this long


@dataclass(frozen=True)
class Stage:
    """A computed or reused stage: its key and the folder holding its files."""

    kind: str
    key: str
    folder: Path
    computed: bool  # True when this call computed it, False when it was reused
    stale: bool = False  # reused although computed by other code than this run's (--reuse-stale-stages)

    def path(self, name: str) -> Path:
        return self.folder / name

    @property
    def ref(self) -> str:
        """How a stage computed from this one names it among its inputs: its folder's name, so its key *and* the
        code version that computed it. With the key alone, a stage recomputed by changed code (say, Slim's sample
        weights) would leave the stages built on it (the next conditioned GAN) found under their old key and
        reused, although built from the old output."""
        return self.folder.name


def stage_key(kind: str, config: Any, inputs: tuple[str, ...] = ()) -> str:
    """sha256 of the stage kind, its config (a dataclass or a dict) and its inputs' keys."""
    payload = config if isinstance(config, dict) else to_dict(config)
    text = json.dumps([kind, payload, list(inputs)], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(folder: Path) -> bool:
    """True when every file named in the manifest exists with its recorded checksum."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        return all(_sha256(folder / name) == digest for name, digest in manifest["files"].items())
    except (OSError, ValueError, KeyError):
        return False


def stage_counts(stages: list[Stage]) -> dict[str, int]:
    """What a trial reports about its stages (harness.metrics names)."""
    from harness import metrics as M

    return {M.STAGES_COMPUTED: sum(s.computed for s in stages),
            M.STAGES_REUSED: sum(not s.computed for s in stages),
            M.STAGES_STALE: sum(s.stale for s in stages)}


def _acquire(lock, what: str, timeout_s: float) -> None:
    """Take ``lock``; while another trial holds it, say every minute what we wait for, and give up after
    ``timeout_s`` with a clear error instead of holding a Ray slot forever. Inside :func:`any_order`,
    a held lock raises :class:`StageBusy` instead of waiting."""
    try:
        lock.acquire(timeout=0)
        return
    except Timeout:
        if _NO_WAIT.get():
            raise StageBusy(what) from None
    waited = 0.0
    while True:
        print(f"gansweep: waiting for stage {what}: another trial is computing it "
              f"({waited:.0f} s so far, limit {timeout_s:.0f} s)", flush=True)
        step = min(WAIT_LOG_EVERY_S, timeout_s - waited)
        try:
            lock.acquire(timeout=max(step, 0.01))
            return
        except Timeout:
            waited += step
            if waited >= timeout_s:
                raise StageTimeout(f"gave up after {waited:.0f} s waiting for stage {what} (its lock "
                                   f"{lock.lock_file} is held by another trial)") from None


def _is_artifact(path: Path) -> bool:
    return path.is_dir() and "." not in path.name


def stage(store: StageStore | Path, kind: str, config: Any, inputs: tuple[str, ...],
          compute: Callable[[Path, Path], None]) -> Stage:
    """The stage ``kind`` for ``config`` and ``inputs``: read if present and intact, else computed.

    ``compute(artifact_dir, work_dir)`` writes the stage's files into ``artifact_dir`` (a fresh
    folder) and may keep resumable checkpoints in ``work_dir`` (kept across failed attempts). Its
    module's code version is part of the stage's identity.
    """
    store = store if isinstance(store, StageStore) else StageStore(Path(store))
    key = stage_key(kind, config, inputs)
    code = code_version(compute.__module__)
    folder = Path(store.root) / f"{kind}-{key}-{code}"
    lock = file_lock(folder)
    _acquire(lock, folder.name, store.wait_timeout_s)
    waiting = _NO_WAIT.set(False)  # stages read inside compute() wait as usual: this one's lock is held
    try:
        if folder.is_dir():
            intact = verify(folder)
            if intact and not (store.recompute and _manifest(folder).get("run") != store.run):
                return Stage(kind, key, folder, computed=False)
            if not intact:
                warnings.warn(f"stage {folder.name} failed its checksum: recomputing it", RuntimeWarning,
                              stacklevel=2)
            shutil.rmtree(folder)
        elif store.reuse_stale and not store.recompute:
            others = sorted((p for p in Path(store.root).glob(f"{kind}-{key}-*") if _is_artifact(p) and verify(p)),
                            key=lambda p: p.stat().st_mtime)
            if others:
                return Stage(kind, key, others[-1], computed=False, stale=True)
        work = folder.with_name(folder.name + ".partial")
        tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
        tmp.mkdir(parents=True)
        compute(tmp, work)
        files = {p.name: _sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        atomic_write(tmp / MANIFEST, json.dumps({
            "kind": kind, "key": key, "code": code, "module": compute.__module__, "run": store.run,
            "inputs": list(inputs), "config": config if isinstance(config, dict) else to_dict(config),
            "files": files}, indent=1, default=str).encode())
        os.replace(tmp, folder)  # the artifact appears whole
        shutil.rmtree(work, ignore_errors=True)
    finally:
        _NO_WAIT.reset(waiting)
        lock.release()
    return Stage(kind, key, folder, computed=True)


def any_order(*branches: Callable[[], Any]) -> list:
    """Run independent branches of stages (each a function reading or computing one or more stages) and
    return their results in the order given, never idling behind another trial's lock while a branch
    can go on: each pending branch is tried without waiting (a stage held by another trial raises
    :class:`StageBusy` and the branch is tried again later; the stages it got so far are cached, so
    a retry reads them); when every pending branch is held, the first one is run waiting as usual.

    Why: two trials of a Pennisi table start together and need the same pre-trained classifier and
    GAN, which do not depend on each other; with one lock after the other, the second trial's core
    idled while the first computed both (bench/stage_cache.py: 0.64x of the no-cache time at mini).
    """
    results: list = [None] * len(branches)
    pending = list(range(len(branches)))
    while pending:
        progressed = False
        for i in list(pending):
            token = _NO_WAIT.set(True)
            try:
                results[i] = branches[i]()
            except StageBusy:
                continue
            finally:
                _NO_WAIT.reset(token)
            pending.remove(i)
            progressed = True
        if pending and not progressed:
            first = pending.pop(0)
            results[first] = branches[first]()
    return results


def _manifest(folder: Path) -> dict:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
