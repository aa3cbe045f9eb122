"""The ``gansweep`` command line.

Bad input (unknown names, values out of range, missing or malformed datasets) stops before Ray
starts, with one line on stderr and exit code 2; nothing is written.
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import sys
from pathlib import Path

from harness.config import ConfigError
from harness.data import DataError
from harness.registry import UnknownName

USER_ERRORS = (ConfigError, DataError, UnknownName)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (not the usage block) and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"gansweep: error: {message} (see `{self.prog} --help`)\n")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 per cell (default: the table's, 3)")
    p.add_argument("--fraction", type=float, help="train fraction for every cell, in (0, 1]")
    p.add_argument("--methods", help="only the cells of these methods (comma-separated)")
    p.add_argument("--rerun", nargs="?", const="trials", choices=("trials", "stages"), default=None,
                   help="run finished trials again (--rerun), and also recompute their cached stages "
                        "(--rerun stages)")
    p.add_argument("--reuse-stale-stages", action="store_true",
                   help="reuse cached stages computed by other code (the report says so) instead of recomputing")
    p.add_argument("--deterministic", action="store_true",
                   help="deterministic kernels on CUDA (slower); CPU runs are deterministic already")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="replace a config field of every cell (e.g. --set epochs=100; with --methods to pick the "
                        "cells that have it); reports show such runs as an overridden block, apart from the "
                        "paper's cells")
    p.add_argument("--skip-missing-data", action="store_true",
                   help="leave out the cells whose dataset or proxy is not here, one line per table naming it and "
                        "how to get it (default for `reproduce`; `run` stops instead)")
    _add_common_options(p)


def _add_common_options(p: argparse.ArgumentParser) -> None:
    from harness.data import default_root

    p.add_argument("--profile", default="mini", help="smoke | mini | converge | paper (default: mini)")
    p.add_argument("--dataset", help="run on this dataset instead of the paper's (the report says so)")
    p.add_argument("--data-root", type=Path, default=None,
                   help=f"where datasets live (default: $GANSWEEP_DATA or {default_root()})")
    p.add_argument("--out", type=Path, default=Path("runs"), help="everything a run writes (default: ./runs)")
    p.add_argument("--address", default=None, help="Ray cluster: auto or HOST:PORT (default: a local Ray)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs (and torch threads) per trial")
    p.add_argument("--gpus-per-trial", type=float, default=0.0, help="GPUs per trial; fractions share a GPU")
    p.add_argument("--max-failures", type=int, default=2, help="restarts of a trial whose worker died")
    p.add_argument("--keep-checkpoints", type=int, default=3, help="checkpoints kept per trial")
    p.add_argument("--inception-weights", default=None,
                   help="torch-fidelity's Inception weights (pt_inception-2015-12-05) for FID/IS/KID")
    p.add_argument("--skip-bad-images", action="store_true",
                   help="leave out image files that do not decode, with a warning (default: stop, naming the file)")
    p.add_argument("--resume", action="store_true", help="finish the last interrupted run (or search)")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="Ray's status tables instead of the one progress line (-vv: also the trials' logs)")


def build_parser() -> Parser:
    parser = Parser(prog="gansweep", description="Benchmark GAN-based training of image classifiers "
                    "from little data: Ray Tune grids, Optuna searches, paper tables.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    sub.add_parser("list", help="papers, tables, methods, datasets, profiles").add_argument(
        "--data-root", type=Path, default=None)

    p = sub.add_parser("run", help="run tables (grids of cells x seeds) with Ray Tune")
    p.add_argument("tables", nargs="+", metavar="TABLE", help="e.g. quickstart, pennisi2021.table2")
    _add_run_options(p)

    p = sub.add_parser("reproduce", help="run every table of one paper, then report")
    p.add_argument("paper", help="e.g. pennisi2021")
    _add_run_options(p)

    p = sub.add_parser("search", help="an Optuna search (Ray Tune's OptunaSearch, ASHA) over a method's knobs")
    p.add_argument("space", help="e.g. pennisi2021.distillation")
    p.add_argument("--trials", type=int, default=20, help="number of trials (default 20)")
    p.add_argument("--scheduler", default="asha", help="asha (stop weak trials early) or none")
    p.add_argument("--storage", default=None, help="Optuna storage URL for the exported study "
                   "(default: sqlite:///<out>/search/<space>/optuna.db)")
    p.add_argument("--seed", type=int, default=0, help="the cell's seed and the sampler's")
    p.add_argument("--confirm-best", action="store_true",
                   help="run the finished search's best config over --seeds seeds as its table's cell (with "
                        "the best values as overrides), beside the paper's cell at the same seeds, at the "
                        "search's profile and dataset unless --profile / --dataset say otherwise; then "
                        "`gansweep report TABLE` shows both")
    p.add_argument("--seeds", type=int, default=3, help="--confirm-best: seeds 0..N-1 (default 3)")
    _add_common_options(p)
    # None: the search's own profile for --confirm-best (mini for a search)
    p.set_defaults(profile=None)

    p = sub.add_parser("report", help="paper tables from the stored results")
    p.add_argument("tables", nargs="*", metavar="TABLE", help="tables to report, or all (default: all run)")
    p.add_argument("--out", type=Path, default=Path("runs"))
    p.add_argument("--format", default="md,html,tex,csv", help="comma-separated: md, html, tex, csv")

    p = sub.add_parser("data", help="datasets")
    data_sub = p.add_subparsers(dest="data_command", required=True, parser_class=Parser)
    p = data_sub.add_parser("prepare", help="make a dataset ready offline")
    p.add_argument("name", help="fashion_mnist, mnist, cifar10, cifar100, svhn or imagefolder:<path>")
    p.add_argument("--root", type=Path, default=None, help="data root (default: $GANSWEEP_DATA or ./data)")
    p.add_argument("--from", dest="archive", type=Path, default=None,
                   help="cifar10: the offline JPEG archive (cifar10-jpeg.tar.xz)")
    return parser


# ---------------------------------------------------------------------------------------------

def cmd_list(args) -> int:
    from harness.data import available, dataset_names, default_root
    from search_spaces import PAPERS, PROFILES, TABLES
    from trainables import METHODS

    root = args.data_root or default_root()
    print("papers:")
    for key, cite in PAPERS.items():
        print(f"  {key:14s} {cite}")
    print("tables:")
    for name, table in TABLES.items():
        print(f"  {name:22s} {len(table.cells):3d} cells  {table.dataset:14s} {table.title}")
    from search_spaces import SEARCH_SPACES

    print("searches:")
    for name, space in SEARCH_SPACES.items():
        print(f"  {name:22s} {space.cell.method}: " + ", ".join(f"{k} in {p}" for k, p in space.params.items()))
    print("methods:")
    for name, fn in METHODS.items():
        print(f"  {name:22s} {(fn.__module__ and sys.modules[fn.__module__].__doc__ or '').splitlines()[0]}")
    print(f"datasets (under {root}):")
    for name in dataset_names():
        try:
            where = None if name.startswith("imagefolder:") else available(name, root)
        except DataError as exc:  # there, but malformed (a truncated file)
            print(f"  {name:22s} malformed: {exc}")
            continue
        state = f"ready: {where}" if where else ("give a path" if name.startswith("imagefolder:")
                                                 else f"not found (gansweep data prepare {name})")
        print(f"  {name:22s} {state}")
    print("profiles:")
    blurb = {"smoke": "seconds; for tests", "mini": "real signal on a 2-core CPU; each table well under an hour",
             "converge": "every stage until its validation signal stops improving (substitutions are labelled)",
             "paper": "the papers' hyperparameters exactly"}
    for name in PROFILES:
        print(f"  {name:22s} {blurb.get(name, '')}")
    return 0


# ---------------------------------------------------------------------------------------------
# Pre-flight: the user's input is checked here, in the driver, before anything is written under
# --out and before Ray starts; each failure is one sentence naming the value and what is allowed.
# ---------------------------------------------------------------------------------------------

# The columns of results.parquet that skipping finished trials and the reports read.
RESULT_COLUMNS = ("table", "cell", "dataset", "profile", "seed", "status", "config_hash", "identity")
# A live Ray head answers a TCP connect in milliseconds, even across a data centre; without this
# check, ray.init retries an unreachable address for about a minute and then prints a traceback.
ADDRESS_TIMEOUT_S = 3.0


def _check_values(args) -> None:
    if getattr(args, "fraction", None) is not None and not 0 < args.fraction <= 1:  # also NaN
        raise ConfigError(f"--fraction {args.fraction} is outside (0, 1]: it is the share of the train set")
    if not (args.cpus_per_trial > 0 and math.isfinite(args.cpus_per_trial)):
        raise ConfigError(f"--cpus-per-trial {args.cpus_per_trial}: must be a number above 0 (fractions allowed)")
    if not (args.gpus_per_trial >= 0 and math.isfinite(args.gpus_per_trial)):
        raise ConfigError(f"--gpus-per-trial {args.gpus_per_trial}: must be 0 or more (fractions share a GPU)")
    if args.max_failures < 0:  # NOTE: Ray reads -1 as "retry forever"; a broken trial would never end
        raise ConfigError(f"--max-failures {args.max_failures}: must be 0 or more")
    if args.keep_checkpoints < 1:  # a trial restarts from its last checkpoint, so one must be kept
        raise ConfigError(f"--keep-checkpoints {args.keep_checkpoints}: must be at least 1")


def _check_out(out: Path) -> None:
    """``--out`` is a folder, or can be made one: neither it nor a parent of it is a file."""
    for p in (out, *out.parents):
        if p.exists():
            if p.is_dir():
                return
            if p == out:
                raise ConfigError(f"--out {out} is a file, not a folder; give a folder (it is created if missing)")
            raise ConfigError(f"--out {out}: {p} is a file, so no folder can be made there")


def _check_results_file(out: Path) -> None:
    """An existing results.parquet must be ours: a file of another schema would fail mid-run (after the
    trials ran) when the new rows are appended to it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from harness.results import results_path

    path = results_path(out)
    if not path.is_file():
        return
    try:
        columns = set(pq.read_schema(path).names)
    except (pa.ArrowException, OSError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{path} is not a Parquet file ({reason}); move it away or choose another --out") from None
    missing = [c for c in RESULT_COLUMNS if c not in columns]
    if missing:
        raise DataError(f"{path} is not a gansweep results file: it lacks the columns {', '.join(missing)}; "
                        "move it away or choose another --out")


def _check_address(address: str | None) -> None:
    """The Ray head must answer on its TCP port. ``RAY_ADDRESS`` wins over ``--address`` in ray.init,
    so it is the one checked when set."""
    env = os.environ.get("RAY_ADDRESS")
    flag, target = ("RAY_ADDRESS", env) if env else ("--address", address)
    if target is None:
        return  # a new local Ray
    if target == "auto":
        target = _auto_address()
        if target is None:
            return
    host, sep, port = target.removeprefix("ray://").rpartition(":")
    host = host.strip("[]")  # [::1]:6379
    if not (sep and host and port.isdigit() and 0 < int(port) < 65536):
        raise ConfigError(f"{flag} {target}: expected auto or HOST:PORT (e.g. 10.0.0.5:6379)")
    try:
        socket.create_connection((host, int(port)), timeout=ADDRESS_TIMEOUT_S).close()
    except OSError as exc:  # refused, timed out, unknown host, no route
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise ConfigError(f"{flag} {target}: no Ray head answers at {host}:{port} ({reason}); start one with "
                          f"`ray start --head --port {port}` there, or give the right HOST:PORT") from None


def _auto_address() -> str | None:
    """The cluster ``--address auto`` would join, or None when Ray's lookup cannot be asked."""
    try:  # NOTE: a private Ray API (2.60); when it moves, ray.init reports a missing cluster itself
        from ray._private.services import get_ray_address_from_environment
    except ImportError:
        return None
    try:
        return get_ray_address_from_environment("auto", None)
    except ConnectionError:
        raise ConfigError("--address auto: no running Ray cluster found on this machine; start one with "
                          "`ray start --head`, or give HOST:PORT") from None
    except (TypeError, AttributeError):
        return None


def _check_storage(url: str | None) -> None:
    """An Optuna storage URL is a SQLAlchemy URL with an installed driver (and, for SQLite, an existing
    folder): the study is exported after the search, too late to find a typo. Creates nothing."""
    if url is None:
        return
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"--storage {url!r} is not a database URL; expected e.g. sqlite:///path/optuna.db "
                          "or postgresql://user@host/db") from None
    shown = parsed.render_as_string(hide_password=True)
    try:
        parsed.get_dialect().import_dbapi()
    except NoSuchModuleError:
        raise ConfigError(f"--storage {shown}: SQLAlchemy knows no database {parsed.drivername!r}; "
                          "use sqlite, postgresql, mysql, ...") from None
    except ImportError as exc:
        raise ConfigError(f"--storage {shown}: its driver is not installed ({exc.name or exc})") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        folder = Path(parsed.database).expanduser().parent
        if not folder.is_dir():
            raise ConfigError(f"--storage {shown}: the folder {folder} does not exist")


def _prepare_datasets(names, root: Path, out: Path, skip_bad_images: bool) -> None:
    """Decode every dataset into the tensor cache now: a missing or malformed one stops with one line
    before Ray starts, and nothing is written until it decoded. Launch then finds the file (its
    ``tensor_cache`` call takes what was decoded here, with or without --skip-bad-images)."""
    from harness.data import tensor_cache

    for name in dict.fromkeys(names):
        tensor_cache(name, root, Path(out).resolve() / "cache" / "data", skip_bad_images)


def _run_tables(args, table_names: list[str], skip_missing_data: bool = False) -> int:
    from harness import launch
    from harness.data import default_root
    from search_spaces import parse_sets, plan

    _check_values(args)
    methods = [m.strip() for m in args.methods.split(",")] if args.methods else None
    trials = plan(table_names, args.profile, args.seeds, args.dataset, args.fraction, methods, parse_sets(args.set))
    if not trials:
        raise ConfigError("no cells to run (check --methods)")
    if skip_missing_data or args.skip_missing_data:
        trials = _with_data(trials, args.data_root or default_root())
    policy = launch.StagePolicy(recompute=args.rerun == "stages", reuse_stale=args.reuse_stale_stages,
                                deterministic=args.deterministic)
    return _launch(args, trials, table_names, args.profile, bool(args.rerun), policy)


def _with_data(trials: list, root: Path) -> list:
    """The trials whose datasets (and proxies) are here. For the others, one line per table: how many of its
    trials are left out, which dataset they need and how to get it (a run on another dataset is `--dataset`,
    labelled); their cells stay empty in the reports. None left: a DataError saying the same in one line."""
    from harness.data import available, get_dataset
    from harness.trial import other_datasets

    found: dict[str, bool] = {}

    def here(name: str) -> bool:
        if name not in found:
            found[name] = available(name, root) is not None
        return found[name]

    # table -> (trials left out, datasets missing, those of them a trial trains on rather than reads as a proxy)
    kept, left_out = [], {}
    for t in trials:
        missing = [n for n in (t.config.dataset, *other_datasets(t.config)) if not here(n)]
        if missing:
            n, needs, own = left_out.get(t.table, (0, set(), set()))
            left_out[t.table] = (n + 1, needs | set(missing), own | ({t.config.dataset} & set(missing)))
        else:
            kept.append(t)

    def why(needs: set, own: set) -> str:
        how = "; ".join(f"{name}: {get_dataset(name).how_to_get}" for name in sorted(needs))
        other = "; or run the table with --dataset, labelled" if own else ""  # --dataset swaps no proxy
        return f"{', '.join(sorted(needs))} not found in {root} ({how}{other})"

    if not kept:  # one line, as every bad input
        raise DataError("nothing to run: " + why(set().union(*(v[1] for v in left_out.values())),
                                                 set().union(*(v[2] for v in left_out.values()))))
    for table, (n, needs, own) in left_out.items():
        print(f"gansweep: skipped {n} trial(s) of {table}: {why(needs, own)}", file=sys.stderr)
    return kept


def _launch(args, trials, table_names: list[str], profile: str, rerun: bool, policy) -> int:
    """Check what is left to check (the output folder, resources, data, Ray's address), then run the
    planned ``trials`` as a table run (``harness.launch.run``): `run`, `reproduce` and `search
    --confirm-best` all go through here."""
    from harness import launch
    from harness.data import check_root, default_root

    _check_out(args.out)
    _check_results_file(args.out)
    resources = launch.Resources(args.cpus_per_trial, args.gpus_per_trial, args.address, args.max_failures,
                                 args.keep_checkpoints)
    if args.gpus_per_trial > 0 and args.address is None:
        import torch

        if not torch.cuda.is_available():
            # NOTE: a local Ray counts the GPUs the NVIDIA driver shows (pynvml), not torch's. With none,
            # no trial asking for a GPU could ever start (Tune would wait for one forever): refuse. With
            # some (say, a CPU-only torch build), trials run on the CPU; pick_device warns in each.
            try:
                from ray._private.accelerators import NvidiaGPUAcceleratorManager

                ray_gpus = NvidiaGPUAcceleratorManager.get_current_node_num_accelerators()
            except Exception:  # a private Ray API: when it moves, warn rather than refuse
                ray_gpus = None
            if ray_gpus == 0:
                raise ConfigError(f"--gpus-per-trial {args.gpus_per_trial}: Ray finds no GPU on this machine, so "
                                  "no trial could start; use --address for a cluster that has GPUs")
            print(f"gansweep: warning: --gpus-per-trial {args.gpus_per_trial}: torch sees no CUDA device here; "
                  "trials given a GPU slot run on the CPU", file=sys.stderr)
    root = args.data_root or default_root()
    if not all(t.config.dataset.startswith("imagefolder:") for t in trials):
        check_root(root)
    _check_inception(args)
    _check_address(args.address)
    _prepare_datasets([t.config.dataset for t in trials], root, args.out, args.skip_bad_images)
    print(f"{len(trials)} trials: {', '.join(table_names)} at profile {profile}; results in {args.out}")
    new = launch.run(trials, table_names, profile, root, args.out, resources, args.resume, rerun,
                     args.verbose, args.inception_weights, policy)
    if new is not None:
        counts = new["status"].value_counts().to_dict()
        print(f"done: {len(new)} trials ({', '.join(f'{v} {k}' for k, v in counts.items())}); "
              f"results in {args.out / 'results.parquet'}")
        return 0 if counts.get("error", 0) == 0 else 1
    return 0


def _check_inception(args) -> None:
    if args.inception_weights and not Path(args.inception_weights).is_file():
        raise ConfigError(f"--inception-weights {args.inception_weights}: no such file")


def cmd_search(args) -> int:
    from harness import launch
    from harness.data import check_root, default_root
    from harness.search import run_search, search_folder
    from search_spaces import PROFILES, SEARCH_SPACES, TABLES

    space = SEARCH_SPACES[args.space]
    if args.profile is not None and args.profile not in PROFILES:
        raise UnknownName(f"unknown profile {args.profile!r}; known: {', '.join(PROFILES)}")
    if args.confirm_best:
        return _confirm_best(args, space)
    args.profile = args.profile or "mini"
    if args.trials < 1:
        raise ConfigError(f"--trials {args.trials}: need at least one trial")
    if args.scheduler not in ("asha", "none"):
        raise ConfigError(f"--scheduler {args.scheduler!r}: choose asha or none")
    if args.seed < 0:  # numpy's and Optuna's generators take no negative seed
        raise ConfigError(f"--seed {args.seed}: must be 0 or more")
    _check_values(args)
    dataset = TABLES[space.table].config(space.cell, args.profile, args.seed, args.dataset).dataset
    _check_out(args.out)
    if not args.resume and (search_folder(args.out, space) / "tune").exists():
        raise ConfigError(f"{search_folder(args.out, space) / 'tune'} exists: add --resume to finish that "
                          "search, or use another --out")
    _check_storage(args.storage)
    root = args.data_root or default_root()
    if not dataset.startswith("imagefolder:"):
        check_root(root)
    _check_inception(args)
    _check_address(args.address)
    resources = launch.Resources(args.cpus_per_trial, args.gpus_per_trial, args.address, args.max_failures,
                                 args.keep_checkpoints)
    _prepare_datasets([dataset], root, args.out, args.skip_bad_images)
    run_search(space, args.profile, args.trials, root, args.out, resources, args.dataset, args.scheduler,
               args.storage, args.resume, args.seed, args.inception_weights, args.verbose)
    return 0


def _confirm_best(args, space) -> int:
    """``search NAME --confirm-best --seeds N``: the search's best config, and the paper's cell, over N
    seeds, as a run of the search's table (:func:`harness.search.confirm_trials`)."""
    from harness import launch
    from harness.search import best_trial, confirm_trials, read_trials
    from search_spaces import shown

    _check_values(args)
    trials = read_trials(args.out, space)
    planned = confirm_trials(space, trials, args.seeds, args.profile, args.dataset)
    best, first = best_trial(trials, space), planned[0]
    print(f"confirming the best of {len(trials)} trials of {space.name} ("
          + ", ".join(f"{k} = {shown(best[k])}" for k in space.params) + f"; {space.metric} {best['objective']:.4g}) "
          f"over {args.seeds} seed(s), beside the paper's {first.table} / {first.cell.name}")
    code = _launch(args, planned, [first.table], first.profile, False, launch.StagePolicy())
    print(f"compare them: gansweep report {first.table} --out {args.out}")
    return code


def cmd_run(args) -> int:
    return _run_tables(args, args.tables)


def cmd_reproduce(args) -> int:
    from search_spaces import PAPERS, TABLES

    if args.paper not in PAPERS:
        raise UnknownName(f"unknown paper {args.paper!r}; known: {', '.join(PAPERS)}")
    names = [n for n, t in TABLES.items() if t.paper == args.paper]
    code = _run_tables(args, names, skip_missing_data=True)  # e.g. Pham's CIFAR-100 tables offline
    report_args = argparse.Namespace(tables=names, out=args.out, format="md,html,tex,csv")
    return cmd_report(report_args) or code


def cmd_report(args) -> int:
    from harness.results import read_results
    from reports import FORMATS, write_reports
    from search_spaces import SEARCH_SPACES, TABLES

    _check_out(args.out)
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ConfigError(f"--format {args.format!r}: choose from {', '.join(FORMATS)}")
    names = [n for n in args.tables if n != "all"]
    searches = [n for n in names if n in SEARCH_SPACES]
    names = [n for n in names if n not in SEARCH_SPACES]
    for n in names:
        TABLES[n]
    _check_results_file(args.out)
    for n in searches:
        from harness.search import read_trials
        from reports.search import write_search_report

        text, written = write_search_report(SEARCH_SPACES[n], read_trials(args.out, SEARCH_SPACES[n]),
                                            args.out / "reports" / n)
        print(text)
        print("written: " + ", ".join(str(p) for p in written) + "\n")
    if searches and not names:
        return 0
    results = read_results(args.out)
    if not names:
        if results.empty:
            raise ConfigError(f"no results in {args.out}; run `gansweep run TABLE --out {args.out}` first")
        names = [n for n in dict.fromkeys(results["table"]) if n in TABLES]
    for text, written in write_reports([TABLES[n] for n in names], results, args.out / "reports", formats,
                                       artifacts=args.out / "artifacts"):
        print(text)
        print("written: " + ", ".join(str(p) for p in written) + "\n")
    return 0


def cmd_data(args) -> int:
    from harness.data import default_root, prepare

    print(prepare(args.name, args.root or default_root(), args.archive))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = {"list": cmd_list, "run": cmd_run, "reproduce": cmd_reproduce, "report": cmd_report,
               "data": cmd_data, "search": cmd_search}[args.command]
    from harness.launch import Interrupted, TrialsFailed

    try:
        return command(args)
    except USER_ERRORS as exc:
        print(f"gansweep: error: {exc}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        print(f"gansweep: {exc}", file=sys.stderr)
        return 130
    except TrialsFailed as exc:  # the trials ran; some failed after their restarts
        print(f"gansweep: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
