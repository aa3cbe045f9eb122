"""Optuna searches through Ray Tune: ``OptunaSearch`` proposes, an optional ASHA scheduler stops
weak trials early, and cached stages (pre-trained classifier, GAN) are shared by all trials.

Everything lives under ``<out>/search/<space>/``: Tune's experiment (``tune/``), the trials table
(``trials.parquet``) and, by default, the exported Optuna study (``optuna.db``).

A search's best is one draw on one seed, chosen among many: ``gansweep search NAME --confirm-best
--seeds N`` runs it again (:func:`confirm_trials`) as an ordinary table run, over N seeds, beside the
paper's own cell at the same seeds; its rows land in results.parquet and ``gansweep report <table>``
shows them as an overridden block beside the paper's cell.

NOTE: Tune's state is the single source of truth. ``OptunaSearch`` given a persistent Optuna storage
crashed on ``Tuner.restore`` (UpdateFinishedTrialError), so the searcher keeps its study in memory
(Tune checkpoints it with the experiment) and the study is *exported* to the storage after each
run: deleted and rewritten from Tune's results, so it always holds exactly the trials Tune has.

A search space's parameters are ``Float`` (optionally log-scale), ``Int`` and ``Choice`` declarations
(``search_spaces``). Each becomes a Ray Tune domain (:func:`tune_domain`), which OptunaSearch samples from the
Optuna distribution :func:`optuna_distribution` gives; the exported study declares the same distributions.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from pathlib import Path

import pandas as pd

from harness import metrics as M
from harness.config import ConfigError, config_hash, to_dict
from harness.identity import code_version, identity
from harness.launch import Resources, data_key, prepare_data, show_output, start_ray, tune_output
from harness.trial import TrialContext, other_datasets
from search_spaces import TABLES, Cell, Choice, Float, Int, Param, SearchSpace, Trial

TRIALS_FILE = "trials.parquet"


def search_folder(out: Path, space: SearchSpace) -> Path:
    return Path(out).resolve() / "search" / space.name


def default_storage(out: Path, space: SearchSpace) -> str:
    return f"sqlite:///{search_folder(out, space) / 'optuna.db'}"


def run_search(space: SearchSpace, profile: str, n_trials: int, data_root: Path, out: Path,
               resources: Resources, dataset: str | None = None, scheduler: str = "asha",
               storage: str | None = None, resume: bool = False, seed: int = 0,
               inception_weights: str | None = None, verbose: int = 0) -> pd.DataFrame:
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    from trainables import run_trial

    if n_trials < 1:
        raise ConfigError(f"--trials {n_trials}: need at least one trial")
    if scheduler not in ("asha", "none"):
        raise ConfigError(f"--scheduler {scheduler!r}: choose asha or none")
    out, data_root = Path(out).resolve(), Path(data_root).resolve()
    table = TABLES[space.table]
    base = table.config(space.cell, profile, seed, dataset)
    check_params(space, base)
    info = prepare_data([Trial(space.name, space.cell, profile, base)], data_root, out)
    folder = search_folder(out, space)
    experiment = folder / "tune"
    epochs = base.planned_epochs  # the number of reports a complete trial makes

    start_ray(resources, verbose)
    try:
        trainable = tune.with_resources(run_trial, {"cpu": resources.cpus_per_trial,
                                                    "gpu": resources.gpus_per_trial})
        if resume and tune.Tuner.can_restore(str(experiment)):
            print(f"resuming the search in {experiment}")
            tuner = tune.Tuner.restore(str(experiment), trainable, resume_unfinished=True, resume_errored=True)
            show_output(tuner, tune_output(verbose, n_trials, resources))
        else:
            if experiment.exists():
                raise ConfigError(f"{experiment} exists: add --resume to finish that search, or use another --out")
            space_config = {**to_dict(base), **{k: tune_domain(p) for k, p in space.params.items()}}
            others = other_datasets(base)
            params = {"method": space.cell.method, "table": space.name, "cell": space.cell.name, "profile": profile,
                      "config_hash": "", "identity": "", "code_version": "", "overrides": "{}",
                      "config": space_config,
                      "context": to_dict(TrialContext(data_file=info[base.dataset]["file"],
                                                      data_fingerprint=info[base.dataset]["fingerprint"], out=str(out),
                                                      # a proxy (DeGAN's): a search varies no dataset
                                                      other_data={n: info[n]["file"] for n in others},
                                                      other_fingerprints={n: info[n]["fingerprint"] for n in others},
                                                      threads=max(1, math.floor(resources.cpus_per_trial)),
                                                      inception_weights=inception_weights, run=experiment.name))}
            # NOTE: ASHA judges a trial no earlier than the trial's own early stopping could (its patience): with a
            # grace period of 1 at converge, 11 of 20 distillation trials were stopped after one epoch, ranked on
            # a validation accuracy whose epoch-to-epoch noise (~2 points) exceeded the trials' differences.
            asha = ASHAScheduler(time_attr="training_iteration", max_t=epochs, grace_period=grace_period(base, epochs),
                                 reduction_factor=2)
            tuner = tune.Tuner(
                trainable, param_space={"trial": params},
                tune_config=tune.TuneConfig(search_alg=OptunaSearch(seed=seed), metric=space.metric, mode=space.mode,
                                            reuse_actors=True,  # as in harness.launch: no torch import per trial
                                            scheduler=asha if scheduler == "asha" else None, num_samples=n_trials),
                run_config=tune.RunConfig(
                    name=experiment.name, storage_path=str(folder), **tune_output(verbose, n_trials, resources),
                    failure_config=tune.FailureConfig(max_failures=resources.max_failures),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=resources.keep_checkpoints)))
        grid = tuner.fit()
    finally:
        ray.shutdown()

    trials = trials_table(grid, space, profile, epochs, data_key(base, info))
    folder.mkdir(parents=True, exist_ok=True)
    trials.to_parquet(folder / TRIALS_FILE, index=False)
    url = storage or default_storage(out, space)
    export_study(trials, space, url)
    print(f"search {space.name}: {len(trials)} trials ({trials['status'].value_counts().to_dict()}); "
          f"study {space.name!r} in {url}")
    return trials


def check_params(space: SearchSpace, base) -> None:
    """Each searched field exists in ``base`` (the cell's config), holds the declared type (Float: a float
    field, Int: an int one, Choice: the values' type), and its bounds or choices make valid configs (the
    config's own checks), so no trial can fail on a value the search proposed. One ConfigError otherwise."""
    for name, p in space.params.items():
        if not hasattr(base, name):
            raise ConfigError(f"{space.name}: {type(base).__name__} has no field {name!r} to search")
        current = getattr(base, name)
        kind = {Float: float, Int: int}.get(type(p)) or type(p.values[0])
        if type(current) is not kind:
            raise ConfigError(f"{space.name}: {name} is {type(current).__name__} in {type(base).__name__}, "
                              f"searched as {type(p).__name__} {p}")
        for value in (p.values if isinstance(p, Choice) else (p.low, p.high)):
            try:
                dataclasses.replace(base, **{name: kind(value)})
            except ConfigError as exc:
                raise ConfigError(f"{space.name}: {name} = {value} of {p} is not a valid config: {exc}") from None


def tune_domain(p: Param):
    """The Ray Tune domain of a search parameter (OptunaSearch converts it to :func:`optuna_distribution`'s)."""
    from ray import tune

    if isinstance(p, Float):
        return tune.loguniform(p.low, p.high) if p.log else tune.uniform(p.low, p.high)
    if isinstance(p, Int):
        return tune.randint(p.low, p.high + 1)  # NOTE: tune.randint's upper bound is exclusive, Int's inclusive
    return tune.choice(list(p.values))


def optuna_distribution(p: Param):
    """The Optuna distribution of a search parameter: the one OptunaSearch samples it from."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(p, Float):
        return FloatDistribution(p.low, p.high, log=p.log)
    if isinstance(p, Int):
        return IntDistribution(p.low, p.high)
    return CategoricalDistribution(p.values)


def grace_period(config, epochs: int) -> int:
    """Epochs before ASHA may stop a trial: the config's early-stopping patience (1 without one), at most
    ``epochs``."""
    return max(1, min(epochs, getattr(config, "patience", 0) or 1))


def trial_status(metrics: dict, error, epochs: int) -> str:
    """ok: the trial ended by itself, after its planned epochs or by its own early stopping (it says so
    with ``complete``); stopped: ASHA stopped it before that; error; diverged.

    NOTE: ``done_epochs`` alone is not enough: a trial whose validation signal stopped improving ends
    before ``epochs`` (profile converge) and is finished, not stopped."""
    if error:
        return "error"
    if metrics.get(M.DIVERGED):
        return "diverged"
    return "ok" if metrics.get(M.COMPLETE) or int(metrics.get(M.DONE_EPOCHS) or 0) >= epochs else "stopped"


def trials_table(grid, space: SearchSpace, profile: str, epochs: int, fingerprint: str) -> pd.DataFrame:
    """One row per Tune trial: its parameters, objective, status, identity, config (with the profile and
    dataset it ran at, which ``--confirm-best`` reuses) and per-epoch objective values."""
    from trainables import METHODS

    code = code_version(METHODS[space.cell.method].__module__)
    rows = []
    for result in grid:
        cfg = result.config["trial"]["config"]
        config = _dataclass(cfg, space)
        metrics = result.metrics or {}
        history = result.metrics_dataframe
        curve = ({int(r["training_iteration"]): float(r[space.metric]) for _, r in history.iterrows()
                  if space.metric in r and not pd.isna(r[space.metric])} if history is not None else {})
        rows.append({"trial_id": metrics.get("trial_id"), "status": trial_status(metrics, result.error, epochs),
                     **{k: p.cast(cfg[k]) for k, p in space.params.items()}, "objective": metrics.get(space.metric),
                     M.TEST_ACC_AT_BEST_VAL_ACC: metrics.get(M.TEST_ACC_AT_BEST_VAL_ACC),
                     M.DONE_EPOCHS: int(metrics.get(M.DONE_EPOCHS) or 0), "curve": curve,
                     "config_hash": config_hash(config, space.cell.method),
                     "identity": identity(space.cell.method, to_dict(config), fingerprint, code),
                     "profile": profile, "dataset": config.dataset,
                     "config": json.dumps(to_dict(config), sort_keys=True),
                     "error": str(result.error).strip().splitlines()[-1][:300] if result.error else None})
    df = pd.DataFrame(rows)
    df["curve"] = df["curve"].map(json.dumps)  # {epoch: objective}, as JSON text (keys differ per trial)
    return df


def _dataclass(cfg: dict, space: SearchSpace):
    from harness.config import from_dict
    from trainables import METHODS

    return from_dict(METHODS[space.cell.method].Config, cfg)


def export_study(trials: pd.DataFrame, space: SearchSpace, storage: str | None):
    """Write the trials as an Optuna study (exactly these trials) that ``optuna.load_study`` and
    optuna-dashboard read: finished trials COMPLETE with their objective, ASHA-stopped ones PRUNED,
    failed ones FAIL; per-epoch objective values as intermediate values; the objective named after its
    metric (optuna-dashboard showed "Objective 0"); each trial's gansweep config hash and identity as
    user attributes, to find its row in results and its stages. ``storage`` None: in memory (reports)."""
    import optuna
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if storage is not None:
        try:
            optuna.delete_study(study_name=space.name, storage=storage)
        except KeyError:
            pass
    direction = "maximize" if space.mode == "max" else "minimize"
    study = optuna.create_study(study_name=space.name, storage=storage, direction=direction)
    with warnings.catch_warnings():  # experimental since Optuna 3.2, still in 5.0
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([space.metric])
    distributions = {k: optuna_distribution(p) for k, p in space.params.items()}
    for row in trials.to_dict("records"):
        state = {"ok": TrialState.COMPLETE, "stopped": TrialState.PRUNED}.get(row["status"], TrialState.FAIL)
        complete = state == TrialState.COMPLETE and row["objective"] is not None and not pd.isna(row["objective"])
        study.add_trial(create_trial(
            params={k: p.cast(row[k]) for k, p in space.params.items()}, distributions=distributions,
            value=float(row["objective"]) if complete else None,
            state=state if complete or state != TrialState.COMPLETE else TrialState.FAIL,
            intermediate_values={int(k): v for k, v in json.loads(row["curve"]).items()},
            user_attrs={"tune_trial_id": row["trial_id"], "status": row["status"], "identity": row["identity"],
                        "config_hash": row["config_hash"], M.TEST_ACC_AT_BEST_VAL_ACC: row[M.TEST_ACC_AT_BEST_VAL_ACC]}))
    return study


def best_trial(trials: pd.DataFrame, space: SearchSpace) -> pd.Series | None:
    """The best trial that finished (status ok) with an objective; None when none did."""
    finished = trials[trials["status"] == "ok"].dropna(subset=["objective"])
    if finished.empty:
        return None
    return finished.sort_values("objective", ascending=space.mode != "max", kind="stable").iloc[0]


def table_cell(space: SearchSpace) -> Cell:
    """The cell of the search's table that the search varies (same method, same fixed fields)."""
    table = TABLES[space.table]
    for cell in table.cells:
        if cell.method == space.cell.method and dict(cell.settings) == dict(space.cell.settings):
            return cell
    raise ConfigError(f"{space.name}: {space.table} has no {space.cell.method} cell with {dict(space.cell.settings)}, "
                      "so there is no paper cell to confirm its best config beside")


def confirm_trials(space: SearchSpace, trials: pd.DataFrame, seeds: int, profile: str | None = None,
                   dataset: str | None = None) -> list[Trial]:
    """The search's best parameters over ``seeds`` seeds, as trials of its table's own cell (so the
    parameters are overrides of that cell: ``search_spaces.overrides``), and the cell as the paper
    defines it at the same seeds, for a paired comparison. At the search's profile and dataset unless
    given (a search at a small budget can be confirmed at a larger one)."""
    if seeds < 1:
        raise ConfigError(f"--seeds {seeds}: need at least one seed")
    best = best_trial(trials, space)
    if best is None:
        raise ConfigError(f"search {space.name} has no finished trial with an objective: nothing to confirm")
    recorded = best.to_dict()
    profile = profile or recorded.get("profile")
    dataset = dataset or recorded.get("dataset")
    if profile is None:  # a trials table written before the profile was recorded
        raise ConfigError(f"search {space.name} did not record its profile: give --profile")
    table, cell = TABLES[space.table], table_cell(space)
    params = {k: p.cast(best[k]) for k, p in space.params.items()}
    planned = []
    for seed in range(seeds):
        paper = table.config(cell, profile, seed, dataset)
        best_config = dataclasses.replace(paper, **params)
        planned.append(Trial(table.name, cell, profile, paper))
        if best_config != paper:  # the best may be the paper's own values: one trial then
            planned.append(Trial(table.name, cell, profile, best_config))
    return planned


def read_trials(out: Path, space: SearchSpace) -> pd.DataFrame:
    path = search_folder(out, space) / TRIALS_FILE
    if not path.is_file():
        raise ConfigError(f"no search {space.name} under {out}: run `gansweep search {space.name}` first")
    return pd.read_parquet(path)
