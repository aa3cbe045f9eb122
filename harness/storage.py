"""Files that appear whole or not at all, and locks between concurrent trials (also across hosts
on shared storage, where the lock file lives beside what it guards)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, IO

from filelock import FileLock


def atomic_write(path: Path, data: bytes | Callable[[IO[bytes]], None]) -> Path:
    """Write ``data`` (bytes, or a function that writes to a binary file) to ``path`` atomically:
    into a temporary file in the same folder, fsync'd, then renamed over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def file_lock(path: Path, timeout: float = -1) -> FileLock:
    """A lock for ``path`` (held on ``path.lock``); ``with file_lock(p): ...``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path) + ".lock", timeout=timeout)
