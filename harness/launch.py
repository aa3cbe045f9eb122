"""Launch: prepare data (before Ray), run the planned trials with ``tune.Tuner``, store the results.

Everything a run writes lives under ``--out``:
  cache/data/<dataset>-<fingerprint>.pt   the decoded uint8 tensors (one per dataset version)
  splits/<hash>.json                      split manifests (indices and hash)
  tune/<experiment>/                      Ray Tune's own files: trials, checkpoints, results
  tune/<experiment>/gansweep-plan.json    the identities of the experiment's trials, and whether it ended
  artifacts/<identity>/                   per-trial data for figures
  results.parquet                         one tidy row per trial, extended by every run

A trial is known by its identity (:mod:`harness.identity`: method, effective config, data
fingerprint, code version). A trial whose identity already has a finished row is not run again (unless
``--rerun``); one whose identity finished under another table is filed there too without running.
``--resume`` restores the newest interrupted experiment whose trials all belong to the current plan,
then runs every planned trial that is still not finished. A run that ends with a planned trial
unfinished (Ctrl-C) or failed says which, and exits non-zero.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import math
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from harness import metrics as M
from harness.config import ConfigError, to_dict
from harness.data import DataError, load_images, make_split, tensor_cache, write_manifest
from harness.identity import code_version, data_fingerprint, identity
from harness.results import FINISHED, append_results, finished_rows, provenance
from harness.storage import atomic_write
from harness.trial import TrialContext, other_datasets
from search_spaces import Trial, overrides

PLAN_FILE = "gansweep-plan.json"


@dataclass(frozen=True)
class Resources:
    """What each trial reserves, and where Ray runs."""

    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    address: str | None = None  # None: a new local Ray on this machine; "auto" or HOST:PORT: a cluster
    max_failures: int = 2  # restarts of a trial whose worker died (from its last checkpoint)
    keep_checkpoints: int = 3  # per trial; NOTE: too few (1) can leave a killed experiment unrestorable

    def __post_init__(self):
        if self.cpus_per_trial <= 0:
            raise ConfigError(f"--cpus-per-trial {self.cpus_per_trial} must be positive")
        if self.gpus_per_trial < 0:
            raise ConfigError(f"--gpus-per-trial {self.gpus_per_trial} is negative")
        if self.max_failures < 0:
            raise ConfigError(f"--max-failures {self.max_failures} is negative")
        if self.keep_checkpoints < 1:
            raise ConfigError(f"--keep-checkpoints {self.keep_checkpoints} must be at least 1")


@dataclass(frozen=True)
class StagePolicy:
    """How a run treats the stage cache (from the command line)."""

    recompute: bool = False  # --rerun stages
    reuse_stale: bool = False  # --reuse-stale-stages
    deterministic: bool = False  # --deterministic (harness.checkpoint.set_deterministic in every trial)


def prepare_data(trials: list[Trial], data_root: Path, out: Path) -> dict[str, dict]:
    """Decode each dataset once into the tensor cache, fingerprint its content and write every trial's
    split manifest.

    Runs in the driver before Ray starts, so a missing or malformed dataset is reported (one line,
    exit code 2) before any trial is scheduled. The datasets a trial reads besides its own (a proxy:
    :func:`harness.trial.other_datasets`) are decoded and fingerprinted too. Returns
    ``dataset -> {file, label, fingerprint, splits}``.
    """
    info: dict[str, dict] = {}
    for trial in trials:
        name = trial.config.dataset
        for other in other_datasets(trial.config):
            if other not in info:
                try:
                    info[other] = _decode(other, data_root, out)
                except DataError as exc:  # say which cell needs it: it is not the table's dataset
                    raise DataError(f"{trial.table} / {trial.cell.name} also reads {other}: {exc}") from None
        if name not in info:
            info[name] = _decode(name, data_root, out)
        cfg = trial.config
        split = make_split(info[name]["labels"], cfg.fraction, cfg.val_fraction, cfg.seed)
        write_manifest(split, name, out / "splits")
        info[name]["splits"][trial.config_hash] = split.hash
    return info


def _decode(name: str, data_root: Path, out: Path) -> dict:
    path = tensor_cache(name, data_root, out / "cache" / "data")
    images = load_images(path)
    return {"file": str(path), "label": images.label, "labels": images.train_y,
            "fingerprint": data_fingerprint(images), "splits": {}}


def data_key(config, info: dict[str, dict]) -> str:
    """The data part of a trial's identity: its dataset's fingerprint, joined by those of the other datasets it
    reads (a proxy's), so a changed proxy is another trial. A one-dataset trial keeps its fingerprint as it was."""
    return "+".join(info[n]["fingerprint"] for n in (config.dataset, *other_datasets(config)))


def identify(trials: list[Trial], info: dict[str, dict]) -> list[Trial]:
    """The trials with their identities (method, config, data fingerprint, code version)."""
    return [dataclasses.replace(t, identity=identity(t.cell.method, to_dict(t.config), data_key(t.config, info),
                                                     _code_of(t.cell.method)))
            for t in trials]


def experiment_prefix(table_names: list[str], profile: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.+-]", "_", "+".join(table_names))[:80]
    return f"{slug}-{profile}"


def _read_plan(folder: Path) -> dict:
    try:
        return json.loads((folder / PLAN_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _write_plan(folder: Path, identities: list[str], complete: bool) -> None:
    atomic_write(folder / PLAN_FILE, json.dumps({"identities": sorted(identities), "complete": complete}).encode())


def resumable_experiment(tune_dir: Path, planned: set[str]) -> Path | None:
    """The newest interrupted experiment under ``tune_dir`` whose trials all belong to the plan."""
    from ray import tune

    for folder in sorted((p for p in tune_dir.glob("*") if p.is_dir()), key=lambda p: p.stat().st_mtime,
                         reverse=True):
        plan = _read_plan(folder)
        if (plan and not plan["complete"] and set(plan["identities"]) <= planned
                and tune.Tuner.can_restore(str(folder))):
            return folder
    return None


def _trial_name(trial) -> str:
    t = trial.config["trial"]
    return f"{t['table']}:{t['cell']}:s{t['config']['seed']}"


def _trial_dirname(trial) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", _trial_name(trial))[:100] + f"_{trial.trial_id}"


class _NotStartedFilter(logging.Filter):
    """Drops Tune's "Failed to fetch metrics ... both result.json and progress.csv were not found" warning
    when every trial it lists simply had not started when the experiment was interrupted: a user reads
    those lines as failures (seen on --resume after SIGKILL, one line per pending trial)."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if not msg.startswith("Failed to fetch metrics"):
            return True
        listed = [line for line in msg.splitlines()[1:] if line.startswith("- ")]
        return not listed or not all("FileNotFoundError" in line and "were not found" in line for line in listed)


def start_ray(resources: Resources, verbose: int) -> None:
    """A new local Ray on this machine, or the cluster at ``resources.address``; our GANSWEEP_*
    variables travel to the workers (fault injection and benchmarks use them)."""
    import ray

    # Ray's new output engine ignores CLIReporter unless this is 0 (seen with Ray 2.60).
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # NOTE: Tune saves the experiment's state (which checkpoint each trial is at) at most every 10 s by
    # default; a driver killed in between restores trials from older checkpoints, or from ones that
    # num_to_keep has deleted since. Every 2 s costs little for grids of tens or hundreds of trials.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")
    logging.getLogger("ray.tune.analysis.experiment_analysis").addFilter(_NotStartedFilter())
    if verbose <= 0:  # the progress line only: Tune's INFO lines came one per trial (tensorboard's hparams)
        logging.getLogger("ray.tune").setLevel(logging.WARNING)
        # and its 3-line "Experiment state snapshotting has been triggered multiple times" warning, printed
        # every few seconds between progress lines when short trials checkpoint often (0 silences it)
        os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    env = {k: v for k, v in os.environ.items() if k.startswith("GANSWEEP_")}
    # NOTE: address=None makes ray.init join the newest cluster started on this machine (RAY_ADDRESS or
    # /tmp/ray/ray_current_cluster) and then fail on num_cpus; "local" always starts our own.
    ray.init(address=resources.address or "local", include_dashboard=False, log_to_driver=verbose > 1,
             runtime_env={"env_vars": env} if env else None,
             **({} if resources.address else {"num_cpus": os.cpu_count()}))


def _params(t: Trial, info: dict, out: Path, experiment: str, threads: int, inception_weights: str | None,
            policy: StagePolicy) -> dict:
    return {"method": t.cell.method, "table": t.table, "cell": t.cell.name, "profile": t.profile,
            "config_hash": t.config_hash, "identity": t.identity, "code_version": _code_of(t.cell.method),
            "overrides": json.dumps(overrides(t), sort_keys=True),
            "config": to_dict(t.config),
            "context": to_dict(TrialContext(
                data_file=info[t.config.dataset]["file"], data_fingerprint=info[t.config.dataset]["fingerprint"],
                out=str(out), threads=threads, inception_weights=inception_weights, run=experiment,
                recompute_stages=policy.recompute, reuse_stale_stages=policy.reuse_stale,
                deterministic=policy.deterministic, artifacts=str(out / "artifacts" / t.identity),
                other_data={n: info[n]["file"] for n in other_datasets(t.config)},
                other_fingerprints={n: info[n]["fingerprint"] for n in other_datasets(t.config)}))}


def _fit(tuner) -> list:
    """Every trial of a finished (or interrupted) ``tuner.fit()``."""
    return list(tuner.fit())


def _finished(result) -> bool:
    """Whether a trial's last report is its final one: it failed, diverged, said so (``complete``: early
    stopping ends a trial before its maximum), or reported every epoch its config plans
    (``Config.planned_epochs``).

    NOTE: Tune's ``done`` flag is not enough: a trial that had finished before its driver was SIGKILLed
    came back from ``Tuner.restore`` without it (seen: a resumed run named finished trials as
    unfinished); and after Ctrl-C a trial cut mid-run carries its last epoch's metrics as if final."""
    from harness.config import from_dict
    from trainables import METHODS

    metrics = result.metrics or {}
    if result.config is None:
        return False
    if result.error or metrics.get(M.DIVERGED) or metrics.get(M.COMPLETE):
        return True
    t = result.config["trial"]
    planned = from_dict(METHODS[t["method"]].Config, t["config"]).planned_epochs
    return metrics.get(M.DONE_EPOCHS) == planned


def run(trials: list[Trial], table_names: list[str], profile: str, data_root: Path, out: Path,
        resources: Resources, resume: bool = False, rerun: bool = False, verbose: int = 0,
        inception_weights: str | None = None, policy: StagePolicy = StagePolicy()):
    """Run the planned ``trials`` (skipping those whose identity already finished, unless ``rerun``) and
    return this run's rows of results.parquet as a DataFrame (None when nothing was filed).

    Raises :class:`Interrupted` when the run stopped before every planned trial finished, and
    :class:`TrialsFailed` when some planned trial ended in an error."""
    import ray
    from ray import tune

    from trainables import run_trial

    # NOTE: absolute paths: trials run with the trial folder as their working directory
    # (seen: a relative --out made every trial fail to find the tensor cache).
    out, data_root = Path(out).resolve(), Path(data_root).resolve()
    info = prepare_data(trials, data_root, out)
    trials = identify(trials, info)
    tune_dir = out / "tune"
    done_before = [] if rerun else finished_rows(out)
    stored = {r["identity"]: r for r in done_before}  # identity -> its latest finished row (any table)
    filed = {(r["table"], r["cell"], r["identity"]) for r in done_before}
    wanted = [t for t in trials if (t.table, t.cell.name, t.identity) not in filed]
    if len(wanted) < len(trials):
        print(f"{len(trials) - len(wanted)} of {len(trials)} trials are already in {out / 'results.parquet'}"
              " (same identity); use --rerun to run them again.")
    restore_from = resumable_experiment(tune_dir, {t.identity for t in trials}) if resume and tune_dir.is_dir() else None
    if resume and not restore_from:
        print(f"no interrupted experiment of this plan under {tune_dir}: running what is not finished")
    # One trial per identity: a cell that recurs across tables (Pennisi's AlexNet 20% runs appear in
    # Tables 1, 3, 4 and 5) is run once and filed in each.
    todo = {}
    for t in wanted:
        if t.identity not in stored:
            todo.setdefault(t.identity, t)

    stamp = provenance()
    threads = max(1, math.floor(resources.cpus_per_trial))
    rows, unfinished = [], []
    if restore_from or todo:
        start_ray(resources, verbose)
        try:
            trainable = tune.with_resources(run_trial, {"cpu": resources.cpus_per_trial,
                                                        "gpu": resources.gpus_per_trial})
            if restore_from:
                print(f"resuming {restore_from}")
                tuner = tune.Tuner.restore(str(restore_from), trainable, resume_errored=True,
                                           resume_unfinished=True)
                show_output(tuner, tune_output(verbose, None, resources, _reporter()))
                got, cut = _collect(_fit(tuner), info, restore_from.name, stamp)
                # trials that had finished before the stop are filed already: keep their rows as they are
                rows += [r for r in got if (r["table"], r["cell"], r["identity"]) not in filed]
                unfinished += cut
                # Filed before the plan says complete and before the new trials' experiment starts: a driver
                # killed in that one must not leave these finished trials unfiled (seen: the next --resume
                # found this experiment complete, the trials nowhere, and ran them again).
                if rows:
                    append_results(out, rows)
                if not cut:
                    _write_plan(restore_from, _read_plan(restore_from)["identities"], complete=True)
                done = {r["identity"] for r in got if r["status"] in FINISHED}
                todo = {i: t for i, t in todo.items() if i not in done}
            if todo and not unfinished:
                # NOTE: a random suffix: two runs started in the same second on one cluster shared Tune's
                # staging folder and copied each other's trials into their --out (seen in tests/test_cluster.py).
                experiment = (f"{experiment_prefix(table_names, profile)}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
                              f"-{uuid.uuid4().hex[:6]}")
                folder = tune_dir / experiment
                _write_plan(folder, list(todo), complete=False)
                params = [_params(t, info, out, experiment, threads, inception_weights, policy) for t in todo.values()]
                tuner = tune.Tuner(
                    trainable,
                    param_space={"trial": tune.grid_search(params)},
                    # NOTE: reusing a trial's worker process for the next trial saves a fresh process importing
                    # torch per trial (seconds each, most of a smoke trial's cost); every trial seeds, sets its
                    # threads and its determinism flags itself, so nothing leaks from one to the next.
                    tune_config=tune.TuneConfig(trial_name_creator=_trial_name, trial_dirname_creator=_trial_dirname,
                                                reuse_actors=True),
                    run_config=tune.RunConfig(
                        name=experiment, storage_path=str(tune_dir),
                        **tune_output(verbose, len(todo), resources, _reporter()),
                        failure_config=tune.FailureConfig(max_failures=resources.max_failures),
                        checkpoint_config=tune.CheckpointConfig(num_to_keep=resources.keep_checkpoints)))
                got, cut = _collect(_fit(tuner), info, experiment, stamp)
                rows += got
                unfinished += cut
                if not cut:
                    _write_plan(folder, list(todo), complete=True)
        finally:
            ray.shutdown()

    # File every planned trial whose identity finished (here, earlier, or under another table).
    ran = {(r["table"], r["cell"], r["identity"]) for r in rows}
    by_identity = {**stored, **{r["identity"]: r for r in rows if r["status"] in FINISHED}}
    rows += [_reuse(by_identity[t.identity], t) for t in wanted
             if (t.table, t.cell.name, t.identity) not in ran and t.identity in by_identity]
    new = append_results(out, rows) if rows else None
    if new is not None:
        own = new[new["reused_from"].isna()]  # rows filed from another table's trial carry its counts
        computed = int(own[M.STAGES_COMPUTED].fillna(0).sum()) if M.STAGES_COMPUTED in own else 0
        reused = int(own[M.STAGES_REUSED].fillna(0).sum()) if M.STAGES_REUSED in own else 0
        stale = int(own[M.STAGES_STALE].fillna(0).sum()) if M.STAGES_STALE in own else 0
        print(f"stages: {computed} computed, {reused} reused"
              + (f" ({stale} computed by other code, reused by --reuse-stale-stages)" if stale else "")
              + f" (stage cache: {out / 'cache' / 'stages'})")

    finished = {r["identity"] for r in rows if r["status"] in FINISHED} | set(stored) | {i for *_, i in filed}
    missing = [t for t in trials if t.identity not in finished]
    errors = {r["identity"]: r["error"] for r in rows if r["status"] == "error"}
    failed = [t for t in missing if t.identity in errors]
    cut = [t for t in missing if t.identity not in errors]
    what = "; ".join([f"{_label(t)} failed: {errors[t.identity]}" for t in failed[:5]]
                     + [f"{_label(t)} not finished" for t in cut[:5]]) + (" ..." if len(missing) > 10 else "")
    if cut:
        raise Interrupted(f"interrupted: {sum(r['status'] in FINISHED for r in rows)} finished trials saved to "
                          f"{out / 'results.parquet'}; {len(missing)} of {len(trials)} planned trials are not "
                          f"done ({what}); run the same command with --resume to finish them")
    if failed:
        raise TrialsFailed(f"{len(failed)} of {len(trials)} planned trials failed ({what}); results in "
                           f"{out / 'results.parquet'}; fix the cause and run the same command to retry them")
    return new


def _label(t: Trial) -> str:
    return f"{t.table} / {t.cell.name} / seed {t.config.seed}"


def tune_output(verbose: int, total: int | None, resources: Resources, reporter=None) -> dict:
    """``tune.RunConfig``'s output fields for ``verbose`` (the command line's -v count): 0, one status line
    (:class:`harness.progress.Progress`) and none of Ray's tables; 1, Ray's tables (``reporter``; None: Tune's
    default); 2, also each trial's log lines (``start_ray``).

    NOTE: RunConfig(verbose=0) is what silences the tables: with RAY_AIR_NEW_OUTPUT=0 (``start_ray``) Tune
    reports progress only at verbosity >= 1 (ray/tune/tune.py, ``has_verbosity(Verbosity.V1_EXPERIMENT)``)."""
    from harness.progress import Progress, slots

    if verbose <= 0:
        return {"verbose": 0, "progress_reporter": None,
                "callbacks": [Progress(total, slots(resources.cpus_per_trial, resources.gpus_per_trial))]}
    return {"verbose": verbose, "progress_reporter": reporter, "callbacks": None}


def show_output(tuner, output: dict) -> None:
    """Give a restored ``tuner`` the output asked for now (``tune_output``).

    NOTE: ``Tuner.restore`` brings back the RunConfig pickled with the experiment, its verbosity and
    callbacks included (ray/tune/impl/tuner_internal.py loads it from tuner.pkl), and takes no RunConfig;
    so a run started with -v would resume with Ray's tables. Tune has no public way to reach it;
    ray-project/ray#41364 names this one (Ray 2.60)."""
    run_config = tuner._local_tuner.get_run_config()
    for name, value in output.items():
        setattr(run_config, name, value)


def _reporter():
    from ray import tune

    return tune.CLIReporter(
        metric_columns={M.EPOCH: "epoch", M.TRAIN_LOSS: "train_loss", M.VAL_ACC: "val_acc",
                        M.TEST_ACC: "test_acc", M.WALL_S: "wall_s"},
        parameter_columns={"trial/table": "table", "trial/cell": "cell", "trial/config/seed": "seed"},
        max_report_frequency=30, sort_by_metric=False, max_column_length=40)


def _collect(grid: list, info: dict, experiment: str, stamp: dict) -> tuple[list[dict], list[str]]:
    """Rows of the trials that finished (or errored), and the names of those that did not.

    NOTE: after Ctrl-C the grid also holds trials that never started (config None; seen: an
    interrupted reproduce crashed here on config None) and trials cut mid-run."""
    rows, cut = [], []
    for result in grid:
        if not _finished(result):
            cut.append(_trial_name_of(result))
            continue
        t = result.config["trial"]
        ds = info.get(t["config"]["dataset"], {})
        rows.append(result_row(t, result.metrics or {}, result.error, result.path, experiment,
                               ds.get("label", t["config"]["dataset"]),
                               ds.get("splits", {}).get(t["config_hash"]), ds.get("fingerprint"), stamp))
    return rows, cut


def _trial_name_of(result) -> str:
    try:
        t = result.config["trial"]
        return f"{t['table']} / {t['cell']} / seed {t['config']['seed']}"
    except (TypeError, KeyError):
        return str(result.path)


class Interrupted(Exception):
    """The run stopped (Ctrl-C, or a killed driver) before every planned trial finished; Tune saved its
    state for --resume."""


class TrialsFailed(Exception):
    """Some planned trials ended in an error (after their restarts)."""


def _reuse(row: dict, t: Trial) -> dict:
    """A finished row of the same identity, filed under another table's cell."""
    return {**row, "table": t.table, "cell": t.cell.name, "row": t.cell.row, "col": t.cell.col,
            "profile": t.profile, "overrides": json.dumps(overrides(t), sort_keys=True),
            "reused_from": f"{row['table']} / {row['cell']}"}


# Tune's own bookkeeping in every report: not the trainable's metrics.
TUNE_KEYS = {"done", "training_iteration", "trial_id", "date", "timestamp", "time_this_iter_s", "time_total_s",
             "pid", "config", "time_since_restore", "iterations_since_restore", "checkpoint_dir_name",
             "should_checkpoint", "experiment_tag"}


def result_row(t: dict, metrics: dict, error, path: str, experiment: str, dataset_label: str,
               split_hash: str | None, fingerprint: str | None, stamp: dict) -> dict:
    """One tidy row: what ran (table, cell, method, data, model, seed, profile), everything the trainable
    reported in its last report (scalars), what it cost, and where it came from."""
    cfg = t["config"]
    # Without a scheduler every trial that did not fail ran to its end.
    status = "error" if error else "diverged" if metrics.get(M.DIVERGED) else "ok"
    row = {
        "table": t["table"], "cell": t["cell"], "row": t["cell"].split(" | ")[0],
        "col": t["cell"].split(" | ")[1], "method": t["method"], "dataset": cfg["dataset"],
        "dataset_label": dataset_label, "fraction": cfg.get("fraction"), "model": cfg.get("model"),
        "seed": cfg["seed"], "profile": t["profile"], "overrides": t.get("overrides", "{}"), "status": status,
        "error": str(error).strip().splitlines()[-1][:500] if error else None,
    }
    for name in M.FINAL_METRICS + M.COST_METRICS:  # always present, so every row has the same core columns
        row[name] = metrics.get(name)
    for name, value in metrics.items():  # and every other scalar, or list of numbers (per class), it reported
        if name not in TUNE_KEYS and name not in row and (value is None or isinstance(value, (int, float, str, bool))
                                                          or _numbers(value)):
            row[name] = list(value) if isinstance(value, tuple) else value
    row.update({"identity": t["identity"], "config_hash": t["config_hash"],
                "code_version": t["code_version"], "data_fingerprint": fingerprint,
                "split_hash": split_hash or metrics.get(M.SPLIT_HASH), "experiment": experiment, "trial_path": path,
                "reused_from": None, "config": json.dumps(cfg, sort_keys=True), **stamp})
    return row


def _numbers(value) -> bool:
    """A list of numbers: a per-class metric (Parquet stores it as a list column)."""
    return isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) for v in value)


def _code_of(method: str) -> str:
    from trainables import METHODS

    return code_version(METHODS[method].__module__)
