"""Launch: prepare data (before Ray), run the trials with ``tune.Tuner``, store the results.

Everything a run writes lives under ``--out``:
  cache/data/<dataset>-<fingerprint>.pt   the decoded uint8 tensors (one per dataset version)
  splits/<hash>.json                      split manifests (indices and hash)
  tune/<experiment>/                      Ray Tune's own files: trials, checkpoints, results
  results.parquet                         one tidy row per trial, extended by every run
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from harness import metrics as M
from harness.config import ConfigError, to_dict
from harness.data import load_images, make_split, tensor_cache, write_manifest
from harness.results import append_results, finished_rows, provenance, stored_keys
from harness.trial import TrialContext
from search_spaces import Trial


@dataclass(frozen=True)
class Resources:
    """What each trial reserves, and where Ray runs."""

    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    address: str | None = None  # None: a local Ray on this machine; "auto" or HOST:PORT: a cluster
    max_failures: int = 2  # restarts of a trial whose worker died (from its last checkpoint)
    keep_checkpoints: int = 3  # per trial; NOTE: too few (1) can leave a killed experiment unrestorable

    def __post_init__(self):
        if self.cpus_per_trial <= 0:
            raise ConfigError(f"--cpus-per-trial {self.cpus_per_trial} must be positive")
        if self.gpus_per_trial < 0:
            raise ConfigError(f"--gpus-per-trial {self.gpus_per_trial} is negative")
        if self.keep_checkpoints < 1:
            raise ConfigError(f"--keep-checkpoints {self.keep_checkpoints} must be at least 1")


def prepare_data(trials: list[Trial], data_root: Path, out: Path) -> dict[str, dict]:
    """Decode each dataset once into the tensor cache and write every trial's split manifest.

    Runs in the driver before Ray starts, so a missing or malformed dataset is reported (one line,
    exit code 2) before any trial is scheduled. Returns ``dataset -> {file, label, split hashes}``.
    """
    info: dict[str, dict] = {}
    for trial in trials:
        name = trial.config.dataset
        if name not in info:
            path = tensor_cache(name, data_root, out / "cache" / "data")
            images = load_images(path)
            info[name] = {"file": str(path), "label": images.label, "labels": images.train_y, "splits": {}}
        cfg = trial.config
        split = make_split(info[name]["labels"], cfg.fraction, cfg.val_fraction, cfg.seed)
        write_manifest(split, name, out / "splits")
        info[name]["splits"][trial.config_hash] = split.hash
    return info


def experiment_prefix(table_names: list[str], profile: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.+-]", "_", "+".join(table_names))[:80]
    return f"{slug}-{profile}"


def _latest_experiment(tune_dir: Path, prefix: str) -> Path | None:
    from ray import tune

    found = sorted(p for p in tune_dir.glob(f"{prefix}-*") if p.is_dir() and tune.Tuner.can_restore(str(p)))
    return found[-1] if found else None


def _trial_name(trial) -> str:
    t = trial.config["trial"]
    return f"{t['table']}:{t['cell']}:s{t['config']['seed']}"


def _trial_dirname(trial) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", _trial_name(trial))[:100] + f"_{trial.trial_id}"


def start_ray(resources: Resources, verbose: int) -> None:
    """A local Ray on this machine, or the cluster at ``resources.address``; our GANSWEEP_* variables
    travel to the workers (fault injection and benchmarks use them)."""
    import ray

    # Ray's new output engine ignores CLIReporter unless this is 0 (seen with Ray 2.60).
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    env = {k: v for k, v in os.environ.items() if k.startswith("GANSWEEP_")}
    ray.init(address=resources.address, include_dashboard=False, log_to_driver=verbose > 1,
             runtime_env={"env_vars": env} if env else None,
             **({} if resources.address else {"num_cpus": os.cpu_count()}))


def run(trials: list[Trial], table_names: list[str], profile: str, data_root: Path, out: Path,
        resources: Resources, resume: bool = False, rerun: bool = False, verbose: int = 1,
        inception_weights: str | None = None):
    """Run ``trials`` (skipping those already in results.parquet unless ``rerun``) and return the
    tidy results of this run as a DataFrame."""
    import ray
    from ray import tune

    from trainables import run_trial

    # NOTE: absolute paths: trials run with the trial folder as their working directory
    # (seen: a relative --out made every trial fail to find the tensor cache).
    out, data_root = Path(out).resolve(), Path(data_root).resolve()
    info = prepare_data(trials, data_root, out)
    prefix = experiment_prefix(table_names, profile)
    tune_dir = (out / "tune").resolve()
    restore_from = _latest_experiment(tune_dir, prefix) if resume else None
    if resume and not restore_from:
        print(f"nothing to resume under {tune_dir} for {prefix}: starting a new run")
    stored = {} if rerun else finished_rows(out)  # config_hash -> a finished row (any table)
    filed = set() if rerun else stored_keys(out)  # (table, cell, config_hash) already in the results
    wanted = [t for t in trials if (t.table, t.cell.name, t.config_hash) not in filed]
    # One trial per distinct config: a cell that recurs across tables (Pennisi's AlexNet 20% runs appear
    # in Tables 1, 3, 4 and 5) is run once and reported in each.
    distinct = {}
    for t in wanted:
        if t.config_hash not in stored:
            distinct.setdefault(t.config_hash, t)
    if len(wanted) < len(trials):
        print(f"{len(trials) - len(wanted)} of {len(trials)} trials are already in {out / 'results.parquet'}"
              " (same config); use --rerun to run them again.")
    if not restore_from and not distinct:
        if wanted:
            print(f"all {len(wanted)} remaining trials reuse finished runs of the same config")
            return append_results(out, [_reuse(stored[t.config_hash], t) for t in wanted])
        return None
    trials = list(distinct.values())

    start_ray(resources, verbose)
    try:
        threads = max(1, math.floor(resources.cpus_per_trial))
        trainable = tune.with_resources(run_trial, {"cpu": resources.cpus_per_trial,
                                                    "gpu": resources.gpus_per_trial})
        reporter = tune.CLIReporter(
            metric_columns={M.EPOCH: "epoch", M.TRAIN_LOSS: "train_loss", M.VAL_ACC: "val_acc",
                            M.TEST_ACC: "test_acc", M.WALL_S: "wall_s"},
            parameter_columns={"trial/table": "table", "trial/cell": "cell", "trial/config/seed": "seed"},
            max_report_frequency=30, sort_by_metric=False, max_column_length=40)
        if restore_from:
            print(f"resuming {restore_from}")
            tuner = tune.Tuner.restore(str(restore_from), trainable, resume_errored=True,
                                       resume_unfinished=True)
            experiment = restore_from.name
        else:
            experiment = f"{prefix}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
            params = [{
                "method": t.cell.method, "table": t.table, "cell": t.cell.name, "profile": t.profile,
                "config_hash": t.config_hash, "config": to_dict(t.config),
                "context": to_dict(TrialContext(data_file=info[t.config.dataset]["file"], out=str(out),
                                                threads=threads, inception_weights=inception_weights)),
            } for t in trials]
            tuner = tune.Tuner(
                trainable,
                param_space={"trial": tune.grid_search(params)},
                tune_config=tune.TuneConfig(trial_name_creator=_trial_name,
                                            trial_dirname_creator=_trial_dirname),
                run_config=tune.RunConfig(
                    name=experiment, storage_path=str(tune_dir), verbose=verbose, progress_reporter=reporter,
                    failure_config=tune.FailureConfig(max_failures=resources.max_failures),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=resources.keep_checkpoints)))
        grid = tuner.fit()
    finally:
        ray.shutdown()

    rows, unfinished = [], 0
    stamp = provenance()
    for result in grid:
        # NOTE: after Ctrl-C the grid also holds trials that never started (config None) and trials
        # cut mid-run, which carry their last epoch's metrics as if final; only a trial Tune marked
        # done (or errored) is a result. Seen: an interrupted reproduce crashed here on config None.
        if result.config is None or not (result.error or (result.metrics or {}).get("done")):
            unfinished += 1
            continue
        t = result.config["trial"]
        ds = info.get(t["config"]["dataset"], {})
        rows.append(result_row(t, result.metrics or {}, result.error, result.path, experiment,
                               ds.get("label", t["config"]["dataset"]),
                               ds.get("splits", {}).get(t["config_hash"]), stamp))
    ran = {(r["table"], r["cell"], r["config_hash"]) for r in rows}
    by_hash = {**stored, **{r["config_hash"]: r for r in rows if r["status"] != "error"}}
    rows += [_reuse(by_hash[t.config_hash], t) for t in wanted
             if (t.table, t.cell.name, t.config_hash) not in ran and t.config_hash in by_hash]
    new = append_results(out, rows) if rows else None
    if new is not None:
        computed = int(new[M.STAGES_COMPUTED].fillna(0).sum())
        reused = int(new[M.STAGES_REUSED].fillna(0).sum())
        print(f"stages: {computed} computed, {reused} reused (stage cache: {out / 'cache' / 'stages'})")
    if unfinished:
        raise Interrupted(f"interrupted: {len(rows)} finished trials saved to {out / 'results.parquet'}, "
                          f"{unfinished} unfinished; run the same command with --resume to finish them")
    return new


class Interrupted(Exception):
    """The run stopped (Ctrl-C) before every trial finished; Tune saved its state for --resume."""


def _reuse(row: dict, t: Trial) -> dict:
    """A finished row of the same config, filed under another table's cell."""
    return {**row, "table": t.table, "cell": t.cell.name, "row": t.cell.row, "col": t.cell.col,
            "profile": t.profile, "reused_from": f"{row['table']} / {row['cell']}"}


def result_row(t: dict, metrics: dict, error, path: str, experiment: str, dataset_label: str,
               split_hash: str | None, stamp: dict) -> dict:
    """One tidy row: what ran (table, cell, method, data, model, seed, profile), what it measured,
    what it cost, and where it came from."""
    cfg = t["config"]
    # Without a scheduler every trial that did not fail ran to its end.
    status = "error" if error else "diverged" if metrics.get(M.DIVERGED) else "ok"
    row = {
        "table": t["table"], "cell": t["cell"], "row": t["cell"].split(" | ")[0],
        "col": t["cell"].split(" | ")[1], "method": t["method"], "dataset": cfg["dataset"],
        "dataset_label": dataset_label, "fraction": cfg.get("fraction"), "model": cfg.get("model"),
        "seed": cfg["seed"], "profile": t["profile"], "status": status,
        "error": str(error).strip().splitlines()[-1][:500] if error else None,
    }
    for name in M.FINAL_METRICS + M.COST_METRICS:
        row[name] = metrics.get(name)
    row.update({"config_hash": t["config_hash"], "split_hash": split_hash or metrics.get(M.SPLIT_HASH),
                "experiment": experiment, "trial_path": path, "reused_from": None,
                "config": json.dumps(cfg, sort_keys=True), **stamp})
    return row
