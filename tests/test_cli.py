"""Bad input stops before Ray starts: one line on stderr, exit code 2, no traceback, nothing written."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from harness.cli import main
from tests.conftest import gansweep


def _image(path, value: int = 40):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((32, 32, 3), value, np.uint8)).save(path)


def _imagefolder(root, bad_file: bool = False, classes=("cat", "dog")):
    for cls in classes:
        (root / cls).mkdir(parents=True)
        for i in range(3):
            _image(root / cls / f"{i}.png", 40 * i)
    if bad_file:
        (root / "dog" / "notes.png").write_text("this is not an image")
    return root


def _truncated_jpeg(root):
    _imagefolder(root)
    jpeg = root / "cat" / "photo.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(jpeg, quality=90)
    jpeg.write_bytes(jpeg.read_bytes()[:600])  # a copy cut short: the header parses, the pixels end early
    return root


def _no_images(root):
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        (root / cls / "README.txt").write_text("photos go here")
    (root / "dog" / "Thumbs.db").write_bytes(b"\0" * 64)
    return root


def _class_without_images(root):
    _imagefolder(root, classes=("cat",))
    (root / "dog").mkdir()
    (root / "dog" / "README.txt").write_text("photos go here")
    return root


def _truncated_idx(root, data_root):
    """A data root whose Fashion-MNIST IDX files are cut to their first 4 KiB (headers intact)."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in sorted((data_root / "FashionMNIST" / "raw").iterdir()):
        with open(f, "rb") as src:
            (raw / f.name).write_bytes(src.read(4096))
    return root


def _out_with(root, results: bytes | pd.DataFrame | None = None, search: bool = False):
    root.mkdir()
    if isinstance(results, pd.DataFrame):
        results.to_parquet(root / "results.parquet", index=False)
    elif results is not None:
        (root / "results.parquet").write_bytes(results)
    if search:
        (root / "search" / "pennisi2021.distillation" / "tune").mkdir(parents=True)
    return root


def _file(path):
    path.write_text("my notes: not a folder\n")
    return path


# Built on demand (a case's placeholders) under the test's tmp_path; the data root is the real one.
FIXTURES = {
    "empty": lambda p, d: (p.mkdir(), p)[1],
    "bad": lambda p, d: _imagefolder(p, bad_file=True),
    "truncjpg": lambda p, d: _truncated_jpeg(p),
    "noimages": lambda p, d: _no_images(p),
    "oneclass": lambda p, d: _imagefolder(p, classes=("cat",)),
    "holes": lambda p, d: _class_without_images(p),
    "idx": _truncated_idx,
    "file": lambda p, d: _file(p),
    "schema": lambda p, d: _out_with(p, pd.DataFrame({"run": ["a"], "accuracy": [0.5], "seed": [0]})),
    "notparquet": lambda p, d: _out_with(p, b"table,cell\nquickstart,x\n"),
    "searched": lambda p, d: _out_with(p, search=True),
}

DISTILL = "pennisi2021.distillation"
BAD = {
    # unknown names
    "unknown table": (["run", "pennisi2021.table99"], "unknown table 'pennisi2021.table99'"),
    "unknown method": (["run", "quickstart", "--methods", "magic_gan"], "unknown method 'magic_gan'"),
    "unknown dataset": (["run", "quickstart", "--dataset", "imagenet22k"], "unknown dataset 'imagenet22k'"),
    "unknown profile": (["run", "quickstart", "--profile", "huge"], "unknown profile 'huge'"),
    "unknown paper": (["reproduce", "pennisi2099"], "unknown paper 'pennisi2099'"),
    "unknown search": (["search", "pennisi2021.everything"], "unknown search space"),
    "unknown search profile": (["search", DISTILL, "--profile", "huge"], "unknown profile 'huge'"),
    "unknown scheduler": (["search", DISTILL, "--scheduler", "hyperband"], "--scheduler 'hyperband'"),
    "unknown dataset to prepare": (["data", "prepare", "imagenet22k"], "unknown dataset 'imagenet22k'"),
    "unknown report format": (["report", "quickstart", "--format", "docx"], "--format 'docx'"),
    "unknown report table": (["report", "pennisi2021.table99"], "unknown table 'pennisi2021.table99'"),
    "unknown option": (["run", "quickstart", "--epochs", "3"], "unrecognized arguments: --epochs"),
    # command-line values out of range
    "every cell's data missing": (["run", "pham2019.table1_cifar100", "--profile", "paper", "--skip-missing-data",
                                   "--data-root", "{empty}"], "nothing to run: cifar100 not found in"),
    "fraction zero": (["run", "quickstart", "--fraction", "0"], "--fraction 0.0 is outside (0, 1]"),
    "fraction above one": (["run", "quickstart", "--fraction", "1.5"], "--fraction 1.5 is outside (0, 1]"),
    "zero seeds": (["run", "quickstart", "--seeds", "0"], "--seeds 0: need at least one seed"),
    "negative seeds": (["run", "quickstart", "--seeds", "-1"], "--seeds -1: need at least one seed"),
    "negative max failures": (["run", "quickstart", "--max-failures", "-1"], "--max-failures -1: must be 0 or more"),
    "zero cpus per trial": (["run", "quickstart", "--cpus-per-trial", "0"], "--cpus-per-trial 0.0: must be"),
    "negative gpus per trial": (["run", "quickstart", "--gpus-per-trial", "-1"], "--gpus-per-trial -1.0: must be"),
    "zero checkpoints kept": (["run", "quickstart", "--keep-checkpoints", "0"], "--keep-checkpoints 0: must be"),
    "search with no trials": (["search", DISTILL, "--trials", "0"], "--trials 0: need at least one trial"),
    "negative search seed": (["search", DISTILL, "--seed", "-3"], "--seed -3: must be 0 or more"),
    "negative search cpus": (["search", DISTILL, "--cpus-per-trial", "-2"], "--cpus-per-trial -2.0: must be"),
    "set without a value": (["run", "quickstart", "--set", "epochs"], "--set epochs: expected FIELD=VALUE"),
    "set of an unknown field": (["run", "pham2019.table1", "--set", "threshold=0.5"],
                                "--set threshold: pham2019.table1 / 50K-real, same #steps | Size (MB) (baseline) "
                                "has no such config field"),
    "set of the wrong type": (["run", "quickstart", "--set", "epochs=many"], "--set epochs=many: expected an integer"),
    "set outside the config's range": (["run", "quickstart", "--set", "epochs=0"],
                                       "--set epochs=0: epochs 0 must be at least 1"),
    "set of the seed": (["run", "quickstart", "--set", "seed=3"], "--set seed: use --seeds instead"),
    "set of a nested field": (["run", "quickstart", "--set", "gan.epochs=3"], "--set gan.epochs: nested fields"),
    "missing inception weights": (["run", "quickstart", "--inception-weights", "/nonexistent.pth"],
                                  "/nonexistent.pth: no such file"),
    # data
    "dataset not prepared": (["run", "quickstart", "--dataset", "mnist", "--data-root", "{empty}"],
                             "dataset mnist not found in"),
    "unreadable data root": (["run", "quickstart", "--data-root", "/nonexistent/gansweep-data"], "not a folder"),
    "no class folders": (["run", "quickstart", "--dataset", "imagefolder:{empty}"], "no class folders in"),
    "empty image folder": (["run", "quickstart", "--dataset", "imagefolder:{noimages}"],
                           "no images in the class folders of"),
    "class folder without images": (["run", "quickstart", "--dataset", "imagefolder:{holes}"],
                                    "class folders without images in {holes}: dog"),
    "single-class folder": (["run", "quickstart", "--dataset", "imagefolder:{oneclass}"],
                            "a classifier needs at least two classes"),
    "corrupt image": (["run", "quickstart", "--dataset", "imagefolder:{bad}"],
                      "corrupt image: {bad}/dog/notes.png does not decode"),
    "truncated jpeg": (["run", "quickstart", "--dataset", "imagefolder:{truncjpg}"],
                       "corrupt image: {truncjpg}/cat/photo.jpg does not decode"),
    "corrupt image in a search": (["search", DISTILL, "--dataset", "imagefolder:{bad}"],
                                  "corrupt image: {bad}/dog/notes.png"),
    "truncated IDX file": (["run", "quickstart", "--data-root", "{idx}"],
                           "{idx}/FashionMNIST/raw/train-images-idx3-ubyte is truncated"),
    # where Ray and the results go
    "invalid storage URL": (["search", DISTILL, "--storage", "optuna.db"], "--storage 'optuna.db' is not a database URL"),
    "unknown storage database": (["search", DISTILL, "--storage", "nosuchdb://host/study"],
                                 "SQLAlchemy knows no database 'nosuchdb'"),
    "storage folder missing": (["search", DISTILL, "--storage", "sqlite:///{empty}/no/such/optuna.db"],
                               "the folder {empty}/no/such does not exist"),
    "search already there": (["search", DISTILL, "--out", "{searched}"], "add --resume to finish that search"),
    "unreachable address": (["run", "quickstart", "--address", "127.0.0.1:1"],
                            "--address 127.0.0.1:1: no Ray head answers"),
    "malformed address": (["run", "quickstart", "--address", "headnode"], "--address headnode: expected auto or HOST:PORT"),
    "unreachable address in a search": (["search", DISTILL, "--address", "127.0.0.1:1"], "no Ray head answers"),
    "out is a file": (["run", "quickstart", "--out", "{file}"], "--out {file} is a file, not a folder"),
    "out under a file": (["run", "quickstart", "--out", "{file}/runs"], "{file} is a file, so no folder"),
    "report out is a file": (["report", "quickstart", "--out", "{file}"], "--out {file} is a file"),
    "results of another schema": (["run", "quickstart", "--out", "{schema}"],
                                  "{schema}/results.parquet is not a gansweep results file: it lacks the "
                                  "columns table, cell, dataset, profile, status, config_hash"),
    "report on results of another schema": (["report", "--out", "{schema}"], "lacks the columns table, cell"),
    "results that are not Parquet": (["run", "quickstart", "--out", "{notparquet}"],
                                     "{notparquet}/results.parquet is not a Parquet file"),
}


def _main(args, capsys) -> tuple[int, str, str]:
    """The CLI's main() in this process (a fresh process per case would cost ~4 s of imports each;
    test_bad_input_in_a_fresh_process covers the console entry point itself)."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _snapshot(folder) -> dict[str, str]:
    """Every file and folder under ``folder``, with a hash of each file's bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


class RayStarted(Exception):
    """Raised in place of starting Ray: a case that gets this far was not stopped in the driver."""


@pytest.fixture
def no_ray(monkeypatch):
    def refuse(*args, **kwargs):
        raise RayStarted("Ray was about to start")

    monkeypatch.setattr("harness.launch.start_ray", refuse)
    monkeypatch.setattr("harness.search.start_ray", refuse)


def _fill(args: list[str], expected: str, tmp_path, data_root) -> tuple[list[str], str]:
    """Build the fixtures a case names ({bad}, {idx}, ...) and put their paths in its arguments and
    in the message it expects."""
    paths = {name: build(tmp_path / name, data_root) for name, build in FIXTURES.items()
             if any("{" + name + "}" in a for a in args)}
    return [a.format(**paths) for a in args], expected.format(**paths)


def test_the_catalogue_is_large_enough():
    assert len(BAD) >= 25


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, capsys, data_root, no_ray):
    args, expected = _fill(*BAD[case], tmp_path, data_root)
    if args[0] in ("run", "report", "search", "reproduce") and "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    before = _snapshot(tmp_path)
    start = time.monotonic()
    code, stdout, stderr = _main(args, capsys)  # an exception here would be a traceback: the test fails
    seconds = time.monotonic() - start
    assert code == 2, (stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gansweep: error: ") and expected in lines[0], stderr
    assert _snapshot(tmp_path) == before, "bad input wrote files (or changed one)"
    if "address" in case:  # refused at once, not after ray.init's minute of retries
        assert seconds < 10, seconds


def test_cells_whose_data_is_missing_are_left_out_naming_it(data_root, tmp_path, capsys):
    """`reproduce` (and `run --skip-missing-data`) leaves out the cells whose dataset is not here, with one line
    per table naming it and how to get it: Pham's CIFAR-100 tables at the paper profile, on a data root holding
    CIFAR-10 only (this machine's, offline); the CIFAR-10 ones run."""
    from harness.cli import _with_data
    from harness.data import available
    from search_spaces import TABLES, plan

    found = Path(available("cifar10", data_root))
    root = tmp_path / "root"  # CIFAR-10 as the data root has it, and nothing else
    (root / found.relative_to(data_root)).parent.mkdir(parents=True, exist_ok=True)
    (root / found.relative_to(data_root)).symlink_to(found, target_is_directory=found.is_dir())
    assert available("cifar10", root) and not available("cifar100", root)
    trials = plan([n for n, t in TABLES.items() if t.paper == "pham2019"], "paper", seeds=1)
    kept = _with_data(trials, root)
    assert {t.config.dataset for t in kept} == {"cifar10"} and 0 < len(kept) < len(trials)
    lines = capsys.readouterr().err.strip().splitlines()
    skipped = {t.table for t in trials if t.config.dataset == "cifar100"}
    assert len(lines) == len(skipped) and all(any(f"of {t}:" in line for line in lines) for t in skipped)
    assert all("cifar100 not found" in line and "gansweep data prepare cifar100" in line for line in lines)
    assert all("--dataset" in line for line in lines)  # the table's own dataset: --dataset runs it on another
    # a missing proxy (DeGAN Table 2 offline): its columns are left out, the offline ones run; no --dataset hint
    kept = _with_data(plan(["addepalli2020.table2"], "converge", seeds=1), root)
    assert {t.config.proxy.source for t in kept} == {"noise", "cifar10"}
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "cifar100, svhn not found" in line and "--dataset" not in line


def test_bad_input_in_a_fresh_process(tmp_path):
    result = gansweep("run", "quickstart", "--fraction", "1.5", "--out", tmp_path / "out")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "outside (0, 1]" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout and not (tmp_path / "out").exists()


def test_an_address_that_does_not_answer_times_out_quickly():
    """A blackholed address (TEST-NET-1, RFC 5737: never routed) is refused within the connect
    timeout, where ray.init would retry for about a minute."""
    from harness.cli import ADDRESS_TIMEOUT_S, ConfigError, _check_address

    start = time.monotonic()
    with pytest.raises(ConfigError, match="no Ray head answers at 192.0.2.1:6379"):
        _check_address("192.0.2.1:6379")
    assert time.monotonic() - start < ADDRESS_TIMEOUT_S + 2


def test_skip_bad_images_reaches_the_data_and_decodes_once(tmp_path, capsys, no_ray):
    """--skip-bad-images: the corrupt file is left out with one warning, the run goes on to Ray (here
    refused), and launch reuses the file decoded by the pre-flight instead of decoding again."""
    folder = _imagefolder(tmp_path / "bad", bad_file=True)
    out = tmp_path / "out"
    with pytest.raises(RayStarted):
        main(["run", "quickstart", "--profile", "smoke", "--seeds", "1", "--methods", "baseline",
              "--dataset", f"imagefolder:{folder}", "--skip-bad-images", "--out", str(out)])
    err = capsys.readouterr().err
    assert err.count("skipped 1 corrupt images") == 1 and "notes.png" in err, err
    assert [p.name.endswith("-skipbad.pt") for p in (out / "cache" / "data").glob("*.pt")] == [True]


def test_good_imagefolder_is_accepted_by_the_data_check(tmp_path):
    """The same folder without the bad file passes validation (so the check above is specific)."""
    from harness.data import load_images, tensor_cache

    folder = _imagefolder(tmp_path / "good", bad_file=False)
    images = load_images(tensor_cache(f"imagefolder:{folder}", tmp_path, tmp_path / "cache"))
    assert images.classes == ("cat", "dog")
    assert len(images.train_y) + len(images.test_y) == 6 and images.shape == (3, 32, 32)


def test_list_shows_registries(data_root, capsys):
    code, stdout, stderr = _main(["list", "--data-root", str(data_root)], capsys)  # in this process: 6 s less
    assert code == 0, stderr
    for word in ("pennisi2021", "quickstart", "pennisi2021.table2", "baseline", "fashion_mnist", "smoke",
                 "mini", "paper"):
        assert word in stdout
    assert "fashion_mnist          ready" in stdout
