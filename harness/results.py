"""Results: one tidy pandas DataFrame, one row per trial, stored as ``<out>/results.parquet``.

Every run appends its rows; a trial run again with the same identity (harness.identity: method,
config, data fingerprint, code version) under the same table and cell replaces its older row, so the
file holds one measurement per identity and cell, and reports never count a trial twice.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
from importlib import metadata
from pathlib import Path

import pandas as pd

from harness.storage import atomic_write, file_lock

RESULTS_FILE = "results.parquet"
KEY = ["table", "cell", "identity"]
PACKAGES = ("gansweep", "torch", "torchvision", "ray", "optuna", "pandas", "numpy", "torch-fidelity",
            "seaborn", "pyarrow", "scikit-learn")


def git_revision() -> str:
    """The checkout's commit, with ``+dirty`` when files differ from it."""
    repo = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return rev + ("+dirty" if dirty else "")


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def provenance() -> dict:
    """The columns that say which code made a row."""
    return {"git_revision": git_revision(), "versions": json.dumps(package_versions(), sort_keys=True),
            "recorded_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


def results_path(out: Path) -> Path:
    return Path(out) / RESULTS_FILE


def read_results(out: Path) -> pd.DataFrame:
    """All rows stored under ``out`` (an empty frame when none)."""
    path = results_path(out)
    return pd.read_parquet(path) if path.is_file() else pd.DataFrame()


FINISHED = ("ok", "diverged")


def finished_rows(out: Path) -> list[dict]:
    """Every finished (ok or diverged) row, in the order filed: a planned trial whose identity is among
    them is not run again, and is filed under its own table from the latest of them."""
    df = read_results(out)
    return [] if df.empty else df[df["status"].isin(FINISHED)].to_dict("records")


def append_results(out: Path, rows: list[dict]) -> pd.DataFrame:
    """Add ``rows`` to ``out/results.parquet`` (atomically, under a lock); return them as a frame."""
    new = pd.DataFrame(rows)
    path = results_path(out)
    with file_lock(path):
        old = read_results(out)
        both = pd.concat([old, new], ignore_index=True) if not old.empty else new
        both = both.drop_duplicates(KEY, keep="last").reset_index(drop=True)
        buf = io.BytesIO()
        both.to_parquet(buf, index=False)
        atomic_write(path, buf.getvalue())
    return new
