"""Datasets: a registry of sources, offline preparation, a uint8 tensor cache, split manifests and
in-memory batches with whole-batch augmentation.

Every dataset is decoded once into uint8 NCHW tensors and cached under ``<out>/cache/data/`` (60,000
JPEGs are not decoded again per trial). Trials load that file and index batches from tensors held in
memory, on the GPU when there is one; random crop and horizontal flip act on whole batches, so no
per-image Python runs on the hot path (the habit of airbench).

Images enter every network as float tensors in [-1, 1] (x / 127.5 - 1): the range of a GAN's tanh
output, so real and generated images share one input space without per-dataset statistics.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import math
import os
import pickle
import shutil
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from harness.config import check
from harness.registry import Registry, UnknownName
from harness.storage import atomic_write, file_lock


class DataError(Exception):
    """A dataset that is missing or malformed; the CLI prints it as one line and exits with code 2."""


# The CIFAR-10 JPEG archive that ships beside the project (shared/data/README.md).
CIFAR10_JPEG_ARCHIVE = "cifar10-jpeg.tar.xz"
CIFAR10_JPEG_LABEL = "cifar10 (jpeg q75)"
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
# An ImageFolder without its own train/ and test/ folders gets this seeded, stratified share held
# out as its test set (seed 0, so every trial of every cell sees the same test set).
IMAGEFOLDER_TEST_FRACTION = 0.2
IMAGEFOLDER_SIZE = 32  # px; the classifier zoo expects 28x28 or 32x32 inputs


def default_root() -> Path:
    """``$GANSWEEP_DATA`` if set, else ``./data``."""
    return Path(os.environ.get("GANSWEEP_DATA", "data"))


@dataclass(frozen=True)
class Images:
    """A whole dataset, decoded: uint8 tensors (N, C, H, W), int64 labels, class names."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[str, ...]
    label: str  # what reports print, e.g. "cifar10 (jpeg q75)"

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])

    def to(self, device: torch.device | str) -> "Images":
        move = {f.name: getattr(self, f.name).to(device) for f in dataclasses.fields(self)
                if isinstance(getattr(self, f.name), torch.Tensor)}
        return dataclasses.replace(self, **move)


@dataclass(frozen=True)
class Source:
    """Where a dataset lives on disk and how to read it."""

    dataset: str
    path: Path  # the folder whose files are the dataset (fingerprinted for the tensor cache)
    read: Callable[[list[str] | None], Images]  # (skipped) -> the dataset; see read_imagefolder


@dataclass(frozen=True)
class Dataset:
    """A registered dataset: how to find it under a root, and how to make it ready offline."""

    name: str
    find: Callable[[Path], Source | None]
    prepare: Callable[[Path], str]
    how_to_get: str


DATASETS: Registry[Dataset] = Registry("dataset")


def get_dataset(name: str) -> Dataset:
    """A registered dataset, or ``imagefolder:<path>`` for a user's own one-folder-per-class data."""
    if name.startswith("imagefolder:"):
        return _imagefolder_dataset(name)
    return DATASETS[name]


def dataset_names() -> list[str]:
    return list(DATASETS) + ["imagefolder:<path>"]


# ---------------------------------------------------------------------------------------------
# torchvision datasets
# ---------------------------------------------------------------------------------------------

def _torchvision_images(cls_name: str, root: Path, label: str) -> Images:
    import torchvision.datasets as tvd

    cls = getattr(tvd, cls_name)
    if cls_name == "SVHN":
        train, test = cls(str(root), split="train"), cls(str(root), split="test")
        xs = [torch.from_numpy(d.data) for d in (train, test)]  # already N, C, H, W
        ys = [torch.as_tensor(d.labels, dtype=torch.int64) for d in (train, test)]
        classes = tuple(str(i) for i in range(10))
    else:
        train, test = cls(str(root), train=True), cls(str(root), train=False)
        xs, ys = [], []
        for d in (train, test):
            x = torch.as_tensor(np.asarray(d.data))
            x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)  # grey N,H,W or RGB N,H,W,C
            xs.append(x.contiguous())
            ys.append(torch.as_tensor(np.asarray(d.targets), dtype=torch.int64))
        classes = tuple(train.classes)
    return Images(xs[0], ys[0], xs[1], ys[1], classes, label)


# What torchvision's readers raise on a damaged file (a bare assert in the IDX reader, pickle errors
# in CIFAR's): the dataset is there but malformed, not missing.
MALFORMED = (AssertionError, ValueError, EOFError, pickle.UnpicklingError)


def _malformed(name: str, folder: Path, exc: BaseException) -> DataError:
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return DataError(f"{name}: torchvision cannot read the files in {folder} ({reason}); delete them and "
                     f"run `gansweep data prepare {name}`")


IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
# Bytes per element of each IDX type code (the format of LeCun's MNIST page, used by Fashion-MNIST).
IDX_ITEM_BYTES = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}


def check_idx(path: Path, dataset: str) -> None:
    """An IDX file's size must be what its header says: 4 magic bytes (0, 0, type, number of
    dimensions), one big-endian uint32 per dimension, then the elements. torchvision's reader fails on
    a truncated file with a bare AssertionError, so we check first and name the file."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(4)
        ndim = head[3] if len(head) == 4 else 0
        dims = f.read(4 * ndim)
    if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in IDX_ITEM_BYTES or not 1 <= ndim <= 3 \
            or len(dims) < 4 * ndim:
        raise DataError(f"{dataset}: {path} is not an IDX file (its {size}-byte header is malformed); "
                        f"delete it and run `gansweep data prepare {dataset}`")
    expected = 4 + 4 * ndim + IDX_ITEM_BYTES[head[2]] * math.prod(
        int.from_bytes(dims[4 * i:4 * i + 4], "big") for i in range(ndim))
    if size != expected:
        raise DataError(f"{dataset}: {path} is {'truncated' if size < expected else 'too long'}: its header "
                        f"promises {expected} bytes, the file has {size}; delete it and run "
                        f"`gansweep data prepare {dataset}`")


def _torchvision_dataset(name: str, cls_name: str, folder: str, how_to_get: str,
                         offline: Callable[[Path], str | None] | None = None,
                         own_root: bool = False) -> Dataset:
    """``folder`` is where torchvision keeps the files under the root; ``own_root`` gives the
    dataset a sub-folder of its own as torchvision's root (SVHN writes its files loose)."""

    def find(root: Path) -> Source | None:
        import torchvision.datasets as tvd

        tv_root = root / folder if own_root else root
        if cls_name in ("MNIST", "FashionMNIST"):
            for n in IDX_FILES:
                if (root / folder / "raw" / n).is_file():
                    check_idx(root / folder / "raw" / n, name)
        try:  # torchvision's own existence check, without its download
            kwargs = {"split": "train"} if cls_name == "SVHN" else {"train": True}
            getattr(tvd, cls_name)(str(tv_root), download=False, **kwargs)
        except (RuntimeError, OSError):
            return None
        except MALFORMED as exc:
            raise _malformed(name, root / folder, exc) from None
        return Source(name, root / folder, lambda skipped=None: read(tv_root))

    def read(tv_root: Path) -> Images:
        try:
            return _torchvision_images(cls_name, tv_root, name)
        except MALFORMED as exc:
            raise _malformed(name, tv_root, exc) from None

    def prepare(root: Path) -> str:
        if find(root):
            return f"{name}: already ready under {root / folder}"
        if offline and (done := offline(root)):
            return done
        import torchvision.datasets as tvd

        tv_root = root / folder if own_root else root
        try:
            for kwargs in ({"split": "train"}, {"split": "test"}) if cls_name == "SVHN" else (
                    {"train": True}, {"train": False}):
                getattr(tvd, cls_name)(str(tv_root), download=True, **kwargs)
        except Exception as exc:  # no network: say where we looked and how to get it
            raise DataError(f"{name}: download failed ({type(exc).__name__}); {how_to_get}") from None
        return f"{name}: downloaded into {root / folder}"

    return Dataset(name, find, prepare, how_to_get)


def _fashion_mnist_from_debian(root: Path) -> str | None:
    """Decompress Debian's ``dataset-fashion-mnist`` IDX files where torchvision reads them.

    NOTE: Debian recompressed the .gz files, so their md5 differ from the ones torchvision checks
    when it downloads; torchvision only checks that the decompressed files exist, so we decompress
    them ourselves instead of letting ``download=True`` retry the network.
    """
    names = IDX_FILES
    if not all((DEBIAN_FASHION_MNIST / f"{n}.gz").is_file() for n in names):
        return None
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for n in names:
        with gzip.open(DEBIAN_FASHION_MNIST / f"{n}.gz", "rb") as src:
            atomic_write(raw / n, src.read())
    return f"fashion_mnist: decompressed Debian's files from {DEBIAN_FASHION_MNIST} into {raw}"


DATASETS.register("fashion_mnist")(_torchvision_dataset(
    "fashion_mnist", "FashionMNIST", "FashionMNIST",
    "install Debian's package dataset-fashion-mnist (apt-get install dataset-fashion-mnist) and run "
    "`gansweep data prepare fashion_mnist`, or run it where a network reaches the download",
    offline=_fashion_mnist_from_debian))
DATASETS.register("mnist")(_torchvision_dataset(
    "mnist", "MNIST", "MNIST", "run `gansweep data prepare mnist` where a network reaches the download"))
DATASETS.register("cifar100")(_torchvision_dataset(
    "cifar100", "CIFAR100", "cifar-100-python",
    "run `gansweep data prepare cifar100` where a network reaches the download"))
DATASETS.register("svhn")(_torchvision_dataset(
    "svhn", "SVHN", "svhn", "run `gansweep data prepare svhn` where a network reaches the download",
    own_root=True))


# ---------------------------------------------------------------------------------------------
# CIFAR-10: torchvision's pickles, or the JPEG archive in ImageFolder layout
# ---------------------------------------------------------------------------------------------

def _find_cifar10_archive() -> Path | None:
    """``$GANSWEEP_CIFAR10_JPEG``, else ``shared/data/`` beside this checkout (how the project ships it)."""
    env = os.environ.get("GANSWEEP_CIFAR10_JPEG")
    candidates = [Path(env)] if env else []
    repo = Path(__file__).resolve().parents[1]
    candidates += [repo.parent / "shared" / "data" / CIFAR10_JPEG_ARCHIVE,
                   repo / "shared" / "data" / CIFAR10_JPEG_ARCHIVE]
    return next((p for p in candidates if p.is_file()), None)


_cifar10_torchvision = _torchvision_dataset("cifar10", "CIFAR10", "cifar-10-batches-py", "")


def _cifar10_find(root: Path) -> Source | None:
    if source := _cifar10_torchvision.find(root):
        return source
    folder = root / "cifar10-jpeg"
    if folder.is_dir():
        return Source("cifar10", folder,
                      lambda skipped=None: read_imagefolder(folder, CIFAR10_JPEG_LABEL, skipped))
    return None


def _cifar10_prepare(root: Path, archive: Path | None = None) -> str:
    if _cifar10_find(root):
        return f"cifar10: already ready under {root}"
    archive = archive or _find_cifar10_archive()
    if archive:
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / ".cifar10-jpeg.unpacking"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        os.replace(tmp / "cifar10-jpeg", root / "cifar10-jpeg")  # appears whole or not at all
        shutil.rmtree(tmp)
        return f"cifar10: unpacked {archive} into {root / 'cifar10-jpeg'} (labelled {CIFAR10_JPEG_LABEL!r})"
    return _cifar10_torchvision.prepare(root)


DATASETS.register("cifar10")(Dataset(
    "cifar10", _cifar10_find, _cifar10_prepare,
    f"run `gansweep data prepare cifar10 --from PATH/{CIFAR10_JPEG_ARCHIVE}` (the offline JPEG "
    "archive) or `gansweep data prepare cifar10` where a network reaches the download"))


# ---------------------------------------------------------------------------------------------
# ImageFolder: one folder per class
# ---------------------------------------------------------------------------------------------

def warn(message: str) -> None:
    """One warning line on stderr (the driver's; datasets are read there, before Ray starts)."""
    print(f"gansweep: warning: {message}", file=sys.stderr)


def _scan(folder: Path, classes: list[str] | None = None) -> tuple[list[str], list[tuple[str, int]], list[str]]:
    """The class folders of ``folder`` (or the given ones), its (image file, label) pairs in a stable
    order, and the other files under the class folders (strays: README.txt, Thumbs.db, .DS_Store)."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, has_file_allowed_extension, make_dataset

    def is_image(path: str) -> bool:
        # NOTE: hidden files are never images: macOS leaves a "._x.jpg" resource fork beside each
        # x.jpg on foreign file systems, which has an image extension and does not decode.
        return has_file_allowed_extension(path, IMG_EXTENSIONS) and not os.path.basename(path).startswith(".")

    if classes is None:
        try:
            classes = find_classes(folder)[0]
        except FileNotFoundError:
            classes = []
        # find_classes keeps hidden folders (.ipynb_checkpoints, .git): they are not classes.
        classes = [c for c in classes if not c.startswith(".")]
    if not classes:
        raise DataError(f"no class folders in {folder} (expected one sub-folder of images per class)")
    samples = make_dataset(folder, {c: i for i, c in enumerate(classes)}, is_valid_file=is_image,
                           allow_empty=True)
    kept = {path for path, _ in samples}
    strays = [os.path.join(d, f) for c in classes for d, _, files in sorted(os.walk(folder / c, followlinks=True))
              for f in sorted(files) if os.path.join(d, f) not in kept]
    return classes, samples, strays


def _decode(samples: list[tuple[str, int]], size: int | None,
            skipped: list[str] | None) -> tuple[list[np.ndarray], list[int]]:
    """Decode each image to RGB uint8 (resized to ``size`` x ``size`` when given). A file that does
    not decode is a DataError naming it, or, when ``skipped`` is a list, appended to it.

    An RGB image is not converted (a copy: bench/decode.py gave 0.78-1.00x the time over four runs).
    NOTE: torchvision.io's decode_jpeg gave the same pixels in 0.56x the time, but torchvision 0.29
    deprecates its image decoding ("will be removed in a future release"), so PIL stays."""
    from PIL import Image

    arrays, labels = [], []
    for path, label in samples:
        try:
            with Image.open(path) as im:
                im.load()  # decodes the whole file: a truncated one fails here
                if im.mode != "RGB":
                    im = im.convert("RGB")
                if size and im.size != (size, size):
                    im = im.resize((size, size), Image.BILINEAR)
                arrays.append(np.asarray(im))
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            # PIL raises OSError (UnidentifiedImageError, "image file is truncated"), SyntaxError
            # (broken PNG chunks) or ValueError, depending on the format and the damage.
            if skipped is None:
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise DataError(f"corrupt image: {path} does not decode ({reason}); remove it, "
                                "or pass --skip-bad-images to skip such files") from None
            skipped.append(path)
            continue
        labels.append(label)
    return arrays, labels


def _stack(arrays: list[np.ndarray], labels: list[int], folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise DataError(f"images of different sizes in {folder}: {sorted(shapes)[:3]}")
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return x, torch.tensor(labels, dtype=torch.int64)


def _check_classes(folder: Path, classes: list[str], labels: list[int]) -> None:
    """A classifier needs at least two classes, and every class folder needs an image."""
    from torchvision.datasets.folder import IMG_EXTENSIONS

    if not labels:
        raise DataError(f"no images in the class folders of {folder} (image files end in "
                        f"{', '.join(IMG_EXTENSIONS)})")
    present = set(labels)
    empty = [c for i, c in enumerate(classes) if i not in present]
    if empty:
        raise DataError(f"class folders without images in {folder}: {', '.join(empty)}")
    if len(classes) < 2:
        raise DataError(f"{folder} has one class folder ({classes[0]}); a classifier needs at least two classes")


def read_imagefolder(folder: Path, label: str, skipped: list[str] | None = None) -> Images:
    """``folder/train/<class>/*`` and ``folder/test/<class>/*``, or ``folder/<class>/*`` (then a
    seeded stratified share is held out as the test set). Images are RGB; they are resized to 32x32
    unless the folder has its own train/test split of equal-sized images (as CIFAR-10's JPEGs).

    Files without an image extension are skipped with one warning line. An image file that does not
    decode is a DataError naming it; when ``skipped`` is a list (``--skip-bad-images``) it is left
    out instead, with one warning line, and its path is appended to ``skipped``.
    """
    bad: list[str] | None = None if skipped is None else []
    if (folder / "train").is_dir() and (folder / "test").is_dir():
        classes, train, strays = _scan(folder / "train")
        _, test, test_strays = _scan(folder / "test", classes)
        strays += test_strays
        train_x, train_y = _decode(train, None, bad)
        _check_classes(folder / "train", classes, train_y)
        test_x, test_y = _decode(test, None, bad)
        if not test_y:
            raise DataError(f"no images in the class folders of {folder / 'test'}")
        train_x, train_y = _stack(train_x, train_y, folder)
        test_x, test_y = _stack(test_x, test_y, folder)
    else:
        classes, samples, strays = _scan(folder)
        arrays, labels = _decode(samples, IMAGEFOLDER_SIZE, bad)
        _check_classes(folder, classes, labels)
        x, y = _stack(arrays, labels, folder)
        held_out = make_split(y, IMAGEFOLDER_TEST_FRACTION, 0.0, seed=0).train
        keep = np.setdiff1d(np.arange(len(y)), held_out)
        train_x, train_y, test_x, test_y = x[keep], y[keep], x[held_out], y[held_out]
    if strays:
        warn(f"skipped {len(strays)} files that are not images in {folder} (e.g. {os.path.basename(strays[0])})")
    if bad:
        warn(f"skipped {len(bad)} corrupt images in {folder} (--skip-bad-images), e.g. {bad[0]}")
        skipped.extend(bad)
    return Images(train_x, train_y, test_x, test_y, tuple(classes), label)


def _imagefolder_dataset(name: str) -> Dataset:
    folder = Path(name.split(":", 1)[1]).expanduser()

    def find(_root: Path) -> Source | None:
        if not folder.is_dir():
            return None
        return Source(name, folder, lambda skipped=None: read_imagefolder(folder, name, skipped))

    def prepare(_root: Path) -> str:
        if not folder.is_dir():
            raise DataError(f"{name}: no folder {folder}")
        return f"{name}: read in place from {folder}"

    return Dataset(name, find, prepare, f"make {folder} a folder with one sub-folder of images per class")


# ---------------------------------------------------------------------------------------------
# The tensor cache: decode once, keyed by a fingerprint of the source files
# ---------------------------------------------------------------------------------------------

def check_root(root: Path) -> None:
    """A data root must be a readable folder (bad input otherwise: exit code 2 at the CLI)."""
    if not root.is_dir():
        raise DataError(f"data root {root} is not a folder (set --data-root or GANSWEEP_DATA)")
    if not os.access(root, os.R_OK | os.X_OK):
        raise DataError(f"data root {root} is not readable")


def locate(name: str, root: Path) -> Source:
    """The dataset's source under ``root``, or a DataError naming where we looked and how to get it."""
    dataset = get_dataset(name)
    if not name.startswith("imagefolder:"):
        check_root(root)
    source = dataset.find(root)
    if source is None:
        where = name.split(":", 1)[1] if name.startswith("imagefolder:") else root
        raise DataError(f"dataset {name} not found in {where}: {dataset.how_to_get}")
    return source


def fingerprint(source: Source) -> str:
    """A hash of the source files' relative paths, sizes and mtimes: a changed file changes the key."""
    h = hashlib.sha256(source.dataset.encode())
    base = source.path
    for dirpath, dirnames, filenames in sorted(os.walk(base)):
        dirnames.sort()
        for f in sorted(filenames):
            st = os.stat(os.path.join(dirpath, f))
            h.update(f"{os.path.relpath(os.path.join(dirpath, f), base)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def tensor_cache(name: str, root: Path, cache_dir: Path, skip_bad_images: bool | None = None) -> Path:
    """Decode the dataset once into ``cache_dir/<name>-<fingerprint>.pt``; return that file.

    ``skip_bad_images``: False, an image that does not decode is a DataError; True, it is left out with
    a warning, and when any was left out the file is ``<name>-<fingerprint>-skipbad.pt`` (other
    content, other name; a folder without bad images gives the same file either way); None (the
    default), whichever of the two the driver's pre-flight already decoded, else False.

    Raises DataError before anything is written when the dataset is missing or malformed. A cache
    file that does not load (truncated by a full disk or a killed copy) is decoded again, with a warning.
    """
    source = locate(name, root)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:60]
    path = cache_dir / f"{safe}-{fingerprint(source)}.pt"
    skipped = path.with_name(f"{path.stem}-skipbad.pt")
    for found in (path, skipped) if skip_bad_images in (True, None) else (path,):
        if found.is_file():
            if _loads(found):
                return found
            warn(f"tensor cache {found} does not load (truncated?); decoding {name} again")
    left_out: list[str] | None = [] if skip_bad_images else None
    images = source.read(left_out)  # decoding errors surface here, before the cache folder exists
    if left_out:
        path = skipped
    cache_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(path):
        if not (path.is_file() and _loads(path)):
            payload = {f.name: getattr(images, f.name) for f in dataclasses.fields(images)}
            atomic_write(path, lambda f: torch.save(payload, f))
    return path


def _loads(path: Path) -> bool:
    """Whether a tensor-cache file loads. Memory-mapped, so checking a 180 MB file reads its zip
    directory and tensor headers, not its pixels; truncation loses the directory at the file's end."""
    try:
        Images(**torch.load(path, weights_only=True, mmap=True))
    except (RuntimeError, OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError):
        return False
    return True


def load_images(path: Path | str) -> Images:
    """Read a tensor-cache file written by :func:`tensor_cache`.

    The last file read stays in memory, keyed by its path, size and modification time: Ray Tune reuses a
    worker process for trial after trial, and reading CIFAR-10's 180 MB again took ~1 s per trial here (most
    of a smoke trial's own time). Callers never modify the tensors in place (they index, copy or convert)."""
    stat = os.stat(path)
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if _LAST_IMAGES.get("key") != key:
        _LAST_IMAGES.update(key=key, images=Images(**torch.load(path, weights_only=True)))
    return _LAST_IMAGES["images"]


_LAST_IMAGES: dict = {}  # {"key": (path, size, mtime), "images": Images}: load_images' one-file cache


# ---------------------------------------------------------------------------------------------
# The split manifest: seeded, stratified, disjoint
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Split:
    """Indices into the official train set: a training subset and a disjoint validation split."""

    train: np.ndarray
    val: np.ndarray
    fraction: float
    val_fraction: float
    seed: int

    @property
    def hash(self) -> str:
        h = hashlib.sha256()
        for part in (self.train, self.val):
            h.update(np.ascontiguousarray(part, dtype=np.int64).tobytes())
            h.update(b"|")
        return h.hexdigest()[:16]

    def manifest(self, dataset: str) -> dict:
        return {"dataset": dataset, "fraction": self.fraction, "val_fraction": self.val_fraction,
                "seed": self.seed, "hash": self.hash, "train": self.train.tolist(), "val": self.val.tolist()}


def make_split(labels: torch.Tensor | np.ndarray, fraction: float, val_fraction: float, seed: int) -> Split:
    """Per class, in class order: shuffle with ``seed``, take ``round(val_fraction * n_c)`` for
    validation, then the next ``round(fraction * n_c)`` for training.

    Validation is drawn first, so for one seed the validation split does not change with the train
    fraction, and the train subsets nest (30% of a seed is inside its 40%): the cells of a fraction
    sweep (Pennisi Table 2) differ only in the data they add.
    """
    check(0 < fraction <= 1, f"fraction {fraction} is outside (0, 1]")
    check(0 <= val_fraction < 1, f"val_fraction {val_fraction} is outside [0, 1)")
    check(fraction + val_fraction <= 1 + 1e-9,
          f"fraction {fraction} + val_fraction {val_fraction} is more than the whole train set")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val = int(round(val_fraction * len(idx)))
        n_train = min(int(round(fraction * len(idx))), len(idx) - n_val)
        val.append(idx[:n_val])
        train.append(idx[n_val:n_val + n_train])
    return Split(np.sort(np.concatenate(train)), np.sort(np.concatenate(val)), fraction, val_fraction, seed)


def write_manifest(split: Split, dataset: str, folder: Path) -> Path:
    """Store a split's indices and hash as ``folder/<hash>.json`` (idempotent: same hash, same file)."""
    path = folder / f"{split.hash}.json"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(split.manifest(dataset)).encode())
    return path


# ---------------------------------------------------------------------------------------------
# Batches from tensors in memory
# ---------------------------------------------------------------------------------------------

def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return x.float().div_(127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] (a generator's tanh, clamped) -> uint8 [0, 255]: the inverse of :func:`to_float`."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def augment(x: torch.Tensor, crop_padding: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Random crop after reflect padding, and horizontal flip, on a whole float batch at once.

    Reflect padding follows airbench (no black borders for the classifier to learn). Offsets and
    flips are drawn on the CPU generator so a run is reproducible on any device.
    """
    n, c, h, w = x.shape
    if crop_padding:
        p = crop_padding
        padded = F.pad(x, (p, p, p, p), mode="reflect")
        dy = torch.randint(0, 2 * p + 1, (n,), generator=generator).to(x.device)
        dx = torch.randint(0, 2 * p + 1, (n,), generator=generator).to(x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # n,1,h,1
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # n,1,1,w
        x = padded[torch.arange(n, device=x.device)[:, None, None, None],
                   torch.arange(c, device=x.device)[None, :, None, None], rows, cols]
    if flip:
        mask = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        x = torch.where(mask[:, None, None, None], x.flip(3), x)
    return x


def batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator,
            crop_padding: int = 0, flip: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One shuffled epoch of (float image batch in [-1, 1], label batch) from uint8 tensors ``x``.

    The last batch may be smaller (no sample is dropped). Shuffling uses ``generator`` (CPU), whose
    state the checkpoint saves, so a resumed epoch draws the same batches.
    """
    order = torch.randperm(len(y), generator=generator).to(x.device)
    for start in range(0, len(y), batch_size):
        idx = order[start:start + batch_size]
        xb = to_float(x[idx])
        if crop_padding or flip:
            xb = augment(xb, crop_padding, flip, generator)
        yield xb, y[idx]


def prepare(name: str, root: Path, archive: Path | None = None) -> str:
    """``gansweep data prepare``: make a dataset ready under ``root`` without a network where we can."""
    if name == "cifar10":
        root.mkdir(parents=True, exist_ok=True)
        return _cifar10_prepare(root, archive)
    dataset = get_dataset(name)
    if not name.startswith("imagefolder:"):
        root.mkdir(parents=True, exist_ok=True)
    return dataset.prepare(root)


def available(name: str, root: Path) -> str | None:
    """Where the dataset is found under ``root``, or None (for ``gansweep list``); a DataError when it
    is there but malformed (a truncated IDX file)."""
    try:
        source = get_dataset(name).find(root) if root.is_dir() else None
    except (UnknownName, OSError):
        return None
    return str(source.path) if source else None


# ---------------------------------------------------------------------------------------------
# Proxy data: another dataset, some of its classes, or noise, in the true data's channels and size
# (Addepalli et al. 2020's "Proxy Dataset": what DeGAN and data-free distillation use in place of the true data)
# ---------------------------------------------------------------------------------------------

NOISE = "noise"  # the proxy source that is no dataset
# Addepalli Table 2's "Random Noise" proxy does not say which noise: ours is uniform random pixels, as many images
# as CIFAR-10's train set, one fixed draw (seed 0), so that it is a dataset like the others (every seed sees it).
NOISE_IMAGES = 50_000
NOISE_SEED = 0
PROXY_NAMES_SHOWN = 8  # a class subset's label names its classes up to this many, else counts them


@dataclass(frozen=True)
class Proxy:
    """Proxy data: the official training images of another dataset (all its classes, or the named ones), or
    random noise; :func:`read_proxy` converts them to the true data's channels and size."""

    source: str = "cifar10"  # a registered dataset, imagefolder:<path>, or "noise" (uniform random pixels)
    classes: tuple[str, ...] = ()  # class names of ``source`` kept (empty: every class), e.g. CIFAR-100's "sea"

    def __post_init__(self):
        if self.source != NOISE:
            try:
                get_dataset(self.source)
            except UnknownName as exc:
                check(False, f"proxy: {exc}")
        check(not (self.source == NOISE and self.classes), "proxy: noise has no classes to choose from")
        check(len(set(self.classes)) == len(self.classes), f"proxy: classes {self.classes} name one class twice")

    @property
    def datasets(self) -> tuple[str, ...]:
        """The registered datasets this proxy reads (none for noise): the driver decodes them before Ray starts."""
        return () if self.source == NOISE else (self.source,)

    @property
    def text(self) -> str:
        """In a few words, for reports: e.g. "cifar100 (6 classes)", "noise"."""
        return self.source + (f" ({len(self.classes)} classes)" if self.classes else "")


@dataclass(frozen=True)
class ProxyData:
    """A proxy read for one trial: its training part and its held-out part (``PROXY_VAL_FRACTION``), in the true
    data's channels and size."""

    train_x: torch.Tensor  # uint8 (N, C, H, W)
    train_y: torch.Tensor  # int64: the source's labels renumbered 0..k-1 in ``Proxy.classes`` order (0 for noise)
    val_x: torch.Tensor
    val_y: torch.Tensor
    label: str  # what reports print, e.g. "cifar10 (jpeg q75), grayscale, 28x28"
    split_hash: str  # of the training / held-out indices (a stage key's input)

    def to(self, device: torch.device | str) -> "ProxyData":
        return dataclasses.replace(self, train_x=self.train_x.to(device), train_y=self.train_y.to(device),
                                   val_x=self.val_x.to(device), val_y=self.val_y.to(device))


def to_shape(x: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """uint8 images (N, C, H, W) in ``shape``'s channels and size. RGB to grey is ITU-R 601-2 luma in PIL's
    fixed-point arithmetic, bit for bit what PIL's convert("L") gives (torchvision's Grayscale transform on PIL
    images, the released DeGAN's likely conversion, calls it; torchvision's tensor rgb_to_grayscale truncates
    instead of rounding: seen, grey 100 became 99); grey to RGB repeats the channel. The size changes by bilinear
    resizing with antialiasing (32 -> 28 px for Fashion-MNIST)."""
    from torchvision.transforms.v2 import functional as TF

    channels, height, width = shape
    if x.shape[1] == 3 and channels == 1:
        def luma(part: torch.Tensor) -> torch.Tensor:  # Pillow's L24: weights 19595, 38470, 7471 of 65536, rounded
            r, g, b = part.to(torch.int32).unbind(1)
            return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).to(torch.uint8)[:, None]

        # in chunks: int32 copies of 40,000 CIFAR images would take ~0.5 GB at once
        x = torch.cat([luma(x[i:i + 10_000]) for i in range(0, len(x), 10_000)]) if len(x) else x[:, :1]
    elif x.shape[1] == 1 and channels == 3:
        x = x.expand(-1, 3, -1, -1)
    elif x.shape[1] != channels:
        raise DataError(f"cannot convert {x.shape[1]}-channel images to {channels} channels")
    if tuple(x.shape[2:]) != (height, width):
        x = TF.resize(x, [height, width], antialias=True)
    return x.contiguous()


def read_proxy(proxy: Proxy, file: str | None, shape: tuple[int, int, int], pool: int, seed: int) -> ProxyData:
    """The proxy's official training images (those of ``proxy.classes``), cut by :func:`proxy_split` (``pool``,
    ``seed``) and converted to ``shape`` (the true data's), from the tensor-cache ``file`` of its source (None for
    noise). A class name the source does not have is a DataError naming the ones it has."""
    if proxy.source == NOISE:
        g = torch.Generator().manual_seed(NOISE_SEED)
        x = torch.randint(0, 256, (NOISE_IMAGES, *shape), dtype=torch.uint8, generator=g)
        y, label = torch.zeros(NOISE_IMAGES, dtype=torch.int64), f"uniform noise ({'x'.join(map(str, shape))})"
    else:
        images = load_images(file)
        x, y, label = images.train_x, images.train_y, images.label
        if proxy.classes:
            missing = [c for c in proxy.classes if c not in images.classes]
            if missing:
                raise DataError(f"proxy {proxy.source} has no class {', '.join(missing)}; its classes: "
                                f"{', '.join(images.classes)}")
            k = len(proxy.classes)
            renumber = torch.full((len(images.classes),), -1, dtype=torch.int64)  # source label -> 0..k-1, or -1
            renumber[[images.classes.index(c) for c in proxy.classes]] = torch.arange(k)
            keep = renumber[y] >= 0
            x, y = x[keep], renumber[y[keep]]
            label += (f": {k} classes ({', '.join(proxy.classes)})" if k <= PROXY_NAMES_SHOWN
                      else f": {k} of {len(images.classes)} classes")
        changes = (["grayscale"] if x.shape[1] == 3 and shape[0] == 1 else []) + \
                  (["RGB from grey"] if x.shape[1] == 1 and shape[0] == 3 else []) + \
                  ([f"{shape[1]}x{shape[2]}"] if tuple(x.shape[2:]) != tuple(shape[1:]) else [])
        label += f", {', '.join(changes)}" if changes else ""
    split = proxy_split(y, pool, seed)
    # converted after the split: a capped pool converts only its own images
    return ProxyData(to_shape(x[split.train], shape), y[split.train], to_shape(x[split.val], shape), y[split.val],
                     label, split.hash)


# The released DeGAN holds out 20% of its proxy's training images (KD_related_data.py: an 80/20 random split) and
# selects the student on them; we keep the same share out of every proxy, whatever the student is selected on.
PROXY_VAL_FRACTION = 0.2


def proxy_split(y: torch.Tensor, pool: int, seed: int) -> Split:
    """Indices into a proxy's images: the training part and the held-out part (``PROXY_VAL_FRACTION``), stratified
    per seed, inside a fixed class-balanced pool of ``pool`` images (0: every image; seed 0, so every seed cuts
    its split from the same pool, as ``ClassifierConfig.train_pool`` does for the true data)."""
    if pool and pool < len(y):
        inside = make_split(y, pool / len(y), 0.0, 0).train
        inner = make_split(y[inside], 1 - PROXY_VAL_FRACTION, PROXY_VAL_FRACTION, seed)
        return dataclasses.replace(inner, train=inside[inner.train], val=inside[inner.val])
    return make_split(y, 1 - PROXY_VAL_FRACTION, PROXY_VAL_FRACTION, seed)
