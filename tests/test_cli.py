"""Bad input stops before Ray starts: one line on stderr, exit code 2, no traceback, nothing written."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from harness.cli import main
from tests.conftest import gansweep


def _imagefolder(root, bad_file: bool):
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((32, 32, 3), 40 * i, np.uint8)).save(root / cls / f"{i}.png")
    if bad_file:
        (root / "dog" / "notes.png").write_text("this is not an image")
    return root


BAD = {
    "unknown table": (["run", "pennisi2021.table99"], "unknown table"),
    "unknown method": (["run", "quickstart", "--methods", "magic_gan"], "unknown method"),
    "unknown dataset": (["run", "quickstart", "--dataset", "imagenet22k"], "unknown dataset"),
    "unknown profile": (["run", "quickstart", "--profile", "huge"], "unknown profile"),
    "fraction zero": (["run", "quickstart", "--fraction", "0"], "outside (0, 1]"),
    "fraction above one": (["run", "quickstart", "--fraction", "1.5"], "outside (0, 1]"),
    "negative seeds": (["run", "quickstart", "--seeds", "-1"], "at least one seed"),
    "dataset not prepared": (["run", "quickstart", "--dataset", "mnist", "--data-root", "{empty}"],
                             "dataset mnist not found in"),
    "unreadable data root": (["run", "quickstart", "--data-root", "/nonexistent/gansweep-data"], "not a folder"),
    "no class folders": (["run", "quickstart", "--dataset", "imagefolder:{empty}"], "no class folders"),
    "file that is not an image": (["run", "quickstart", "--dataset", "imagefolder:{bad}"], "not an image"),
    "unknown dataset to prepare": (["data", "prepare", "imagenet22k"], "unknown dataset"),
    "unknown report format": (["report", "quickstart", "--format", "docx"], "--format"),
    "unknown option": (["run", "quickstart", "--epochs", "3"], "unrecognized arguments"),
    "unknown search": (["search", "pennisi2021.everything"], "unknown search space"),
    "search with no trials": (["search", "pennisi2021.distillation", "--trials", "0"], "at least one trial"),
    "missing inception weights": (["run", "quickstart", "--inception-weights", "/nonexistent.pth"], "no such file"),
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


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, capsys):
    args, expected = BAD[case]
    (tmp_path / "empty").mkdir()
    _imagefolder(tmp_path / "bad", bad_file=True)
    out = tmp_path / "out"
    args = [a.format(empty=tmp_path / "empty", bad=tmp_path / "bad") for a in args]
    if args[0] in ("run", "report", "search"):
        args += ["--out", str(out)]
    code, stdout, stderr = _main(args, capsys)  # an exception here would be a traceback: the test fails
    assert code == 2, (stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], stderr
    assert not out.exists(), "bad input wrote files"


def test_bad_input_in_a_fresh_process(tmp_path):
    result = gansweep("run", "quickstart", "--fraction", "1.5", "--out", tmp_path / "out")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "outside (0, 1]" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout and not (tmp_path / "out").exists()


def test_good_imagefolder_is_accepted_by_the_data_check(tmp_path):
    """The same folder without the bad file passes validation (so the check above is specific)."""
    from harness.data import load_images, tensor_cache

    folder = _imagefolder(tmp_path / "good", bad_file=False)
    images = load_images(tensor_cache(f"imagefolder:{folder}", tmp_path, tmp_path / "cache"))
    assert images.classes == ("cat", "dog")
    assert len(images.train_y) + len(images.test_y) == 6 and images.shape == (3, 32, 32)


def test_list_shows_registries(data_root):
    result = gansweep("list", "--data-root", data_root)
    assert result.returncode == 0, result.stderr
    for word in ("pennisi2021", "quickstart", "pennisi2021.table2", "baseline", "fashion_mnist", "smoke",
                 "mini", "paper"):
        assert word in result.stdout
    assert "fashion_mnist          ready" in result.stdout
