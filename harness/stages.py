"""The stage cache: a stage's output (a pre-trained classifier, a hard/easy split, a pre-trained GAN)
stored under a key derived from its config and its inputs' keys, computed once.

    <out>/cache/stages/<kind>-<key>/           the artifact: files + MANIFEST.json (sha256 of each)
    <out>/cache/stages/<kind>-<key>.partial/   work in progress: per-epoch checkpoints of the compute
    <out>/cache/stages/<kind>-<key>.lock       held while one trial checks or computes the stage

A stage is computed under a file lock, so concurrent trials (also on other hosts, when --out is on
shared storage) compute it once: the others wait, then read it. The artifact folder appears by one
rename, so it is whole or absent; it is verified against its manifest when read, and a corrupt
artifact is recomputed with a warning. A compute that dies leaves its ``.partial`` folder, where the
next attempt resumes from the last epoch checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from harness.config import to_dict
from harness.storage import atomic_write, file_lock

MANIFEST = "MANIFEST.json"


@dataclass(frozen=True)
class Stage:
    """A computed or reused stage: its key and the folder holding its files."""

    kind: str
    key: str
    folder: Path
    computed: bool  # True when this call computed it, False when it was reused

    def path(self, name: str) -> Path:
        return self.folder / name


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


def stage(root: Path, kind: str, config: Any, inputs: tuple[str, ...],
          compute: Callable[[Path, Path], None]) -> Stage:
    """The stage ``kind`` for ``config`` and ``inputs``: read if present and intact, else computed.

    ``compute(artifact_dir, work_dir)`` writes the stage's files into ``artifact_dir`` (a fresh
    folder) and may keep resumable checkpoints in ``work_dir`` (kept across failed attempts).
    """
    key = stage_key(kind, config, inputs)
    folder = Path(root) / f"{kind}-{key}"
    with file_lock(folder):
        if folder.is_dir():
            if verify(folder):
                return Stage(kind, key, folder, computed=False)
            warnings.warn(f"stage {folder.name} failed its checksum: recomputing it", RuntimeWarning, stacklevel=2)
            shutil.rmtree(folder)
        work = folder.with_name(folder.name + ".partial")
        tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
        tmp.mkdir(parents=True)
        compute(tmp, work)
        files = {p.name: _sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        atomic_write(tmp / MANIFEST, json.dumps({"kind": kind, "key": key, "inputs": list(inputs),
                                                  "config": config if isinstance(config, dict) else to_dict(config),
                                                  "files": files}, indent=1, default=str).encode())
        os.replace(tmp, folder)  # the artifact appears whole
        shutil.rmtree(work, ignore_errors=True)
    return Stage(kind, key, folder, computed=True)
