"""The ``gansweep`` command line.

Bad input (unknown names, values out of range, missing or malformed datasets) stops before Ray
starts, with one line on stderr and exit code 2; nothing is written.
"""

from __future__ import annotations

import argparse
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
    p.add_argument("--rerun", action="store_true", help="run trials again even if results.parquet has them")
    _add_common_options(p)


def _add_common_options(p: argparse.ArgumentParser) -> None:
    from harness.data import default_root

    p.add_argument("--profile", default="mini", help="smoke | mini | paper (default: mini)")
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
    p.add_argument("--resume", action="store_true", help="finish the last interrupted run (or search)")
    p.add_argument("-v", "--verbose", action="count", default=1, help="more Ray output (-vv: trial logs)")


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
    _add_common_options(p)

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
        print(f"  {name:22s} {space.cell.method}: " + ", ".join(f"{k} in [{lo}, {hi}]" for k, (lo, hi) in space.params.items()))
    print("methods:")
    for name, fn in METHODS.items():
        print(f"  {name:22s} {(fn.__module__ and sys.modules[fn.__module__].__doc__ or '').splitlines()[0]}")
    print(f"datasets (under {root}):")
    for name in dataset_names():
        where = None if name.startswith("imagefolder:") else available(name, root)
        state = f"ready: {where}" if where else ("give a path" if name.startswith("imagefolder:")
                                                 else f"not found (gansweep data prepare {name})")
        print(f"  {name:22s} {state}")
    print("profiles:")
    blurb = {"smoke": "seconds; for tests", "mini": "real signal on a 2-core CPU; each table well under an hour",
             "paper": "the papers' hyperparameters exactly"}
    for name in PROFILES:
        print(f"  {name:22s} {blurb[name]}")
    return 0


def _run_tables(args, table_names: list[str]) -> int:
    from harness import launch
    from harness.data import check_root, default_root
    from search_spaces import plan

    methods = [m.strip() for m in args.methods.split(",")] if args.methods else None
    trials = plan(table_names, args.profile, args.seeds, args.dataset, args.fraction, methods)
    if not trials:
        raise ConfigError("no cells to run (check --methods)")
    resources = launch.Resources(args.cpus_per_trial, args.gpus_per_trial, args.address, args.max_failures,
                                 args.keep_checkpoints)
    if args.gpus_per_trial > 0 and args.address is None:
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"--gpus-per-trial {args.gpus_per_trial}: this machine has no CUDA GPU")
    root = args.data_root or default_root()
    if not all(t.config.dataset.startswith("imagefolder:") for t in trials):
        check_root(root)
    _check_inception(args)
    print(f"{len(trials)} trials: {', '.join(table_names)} at profile {args.profile}; results in {args.out}")
    new = launch.run(trials, table_names, args.profile, root, args.out, resources, args.resume, args.rerun,
                     args.verbose, args.inception_weights)
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
    from harness.search import run_search
    from search_spaces import PROFILES, SEARCH_SPACES

    space = SEARCH_SPACES[args.space]
    if args.profile not in PROFILES:
        raise UnknownName(f"unknown profile {args.profile!r}; known: {', '.join(PROFILES)}")
    root = args.data_root or default_root()
    check_root(root)
    _check_inception(args)
    resources = launch.Resources(args.cpus_per_trial, args.gpus_per_trial, args.address, args.max_failures,
                                 args.keep_checkpoints)
    run_search(space, args.profile, args.trials, root, args.out, resources, args.dataset, args.scheduler,
               args.storage, args.resume, args.seed, args.inception_weights, args.verbose)
    return 0


def cmd_run(args) -> int:
    return _run_tables(args, args.tables)


def cmd_reproduce(args) -> int:
    from search_spaces import PAPERS, TABLES

    if args.paper not in PAPERS:
        raise UnknownName(f"unknown paper {args.paper!r}; known: {', '.join(PAPERS)}")
    names = [n for n, t in TABLES.items() if t.paper == args.paper]
    code = _run_tables(args, names)
    report_args = argparse.Namespace(tables=names, out=args.out, format="md,html,tex,csv")
    return cmd_report(report_args) or code


def cmd_report(args) -> int:
    from harness.results import read_results
    from reports import FORMATS, write_report
    from search_spaces import SEARCH_SPACES, TABLES

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ConfigError(f"--format {args.format!r}: choose from {', '.join(FORMATS)}")
    names = [n for n in args.tables if n != "all"]
    searches = [n for n in names if n in SEARCH_SPACES]
    names = [n for n in names if n not in SEARCH_SPACES]
    for n in names:
        TABLES[n]
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
    for name in names:
        text, written = write_report(TABLES[name], results, args.out / "reports" / name, formats,
                                     artifacts=args.out / "artifacts")
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
    from harness.launch import Interrupted

    try:
        return command(args)
    except USER_ERRORS as exc:
        print(f"gansweep: error: {exc}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        print(f"gansweep: {exc}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
