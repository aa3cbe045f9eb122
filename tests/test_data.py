"""The split manifest, the batch path and the dataset sources."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.data import augment, batches, load_images, make_split, tensor_cache, to_float


def _labels(per_class=(100, 50, 30)):
    return np.concatenate([np.full(n, c) for c, n in enumerate(per_class)])


def test_split_is_stratified_disjoint_and_deterministic():
    labels = _labels()
    split = make_split(labels, fraction=0.2, val_fraction=0.1, seed=3)
    assert set(split.train).isdisjoint(split.val)
    for c, n in enumerate((100, 50, 30)):
        assert (labels[split.train] == c).sum() == round(0.2 * n)
        assert (labels[split.val] == c).sum() == round(0.1 * n)
    again = make_split(labels, 0.2, 0.1, seed=3)
    assert np.array_equal(split.train, again.train) and split.hash == again.hash
    other = make_split(labels, 0.2, 0.1, seed=4)
    assert split.hash != other.hash and not np.array_equal(split.train, other.train)


def test_split_val_is_fixed_across_fractions_and_train_subsets_nest():
    labels = _labels()
    small, large = make_split(labels, 0.3, 0.1, 0), make_split(labels, 0.6, 0.1, 0)
    assert np.array_equal(small.val, large.val)
    assert set(small.train) < set(large.train)
    full = make_split(labels, 0.9, 0.1, 0)
    assert len(full.train) + len(full.val) == len(labels)


@pytest.mark.parametrize("fraction,val", [(0.0, 0.1), (1.5, 0.1), (0.95, 0.1)])
def test_split_rejects_bad_fractions(fraction, val):
    from harness.config import ConfigError

    with pytest.raises(ConfigError):
        make_split(_labels(), fraction, val, 0)


def test_augment_crops_and_flips_whole_batches():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    assert torch.equal(augment(x, 0, False, g), x)
    flipped = augment(x, 0, True, torch.Generator().manual_seed(1))
    for i in range(2):  # each image is either itself or its mirror
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(2))
    cropped = augment(x, 1, False, g)
    assert cropped.shape == x.shape
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
    for i in range(2):  # each crop is a 4x4 window of the padded image
        windows = padded[i, 0].unfold(0, 4, 1).unfold(1, 4, 1).reshape(-1, 4, 4)
        assert any(torch.equal(w, cropped[i, 0]) for w in windows)


def test_batches_cover_an_epoch_once_in_range():
    x = torch.randint(0, 256, (10, 1, 8, 8), dtype=torch.uint8)
    y = torch.arange(10)
    seen = torch.cat([yb for _, yb in batches(x, y, 4, torch.Generator().manual_seed(0))])
    assert sorted(seen.tolist()) == list(range(10))
    xb, _ = next(batches(x, y, 4, torch.Generator().manual_seed(0)))
    assert xb.dtype == torch.float32 and xb.min() >= -1 and xb.max() <= 1
    assert torch.allclose(to_float(torch.tensor([0, 255], dtype=torch.uint8)), torch.tensor([-1.0, 1.0]))


@pytest.mark.parametrize("name,train,test,shape,label", [
    ("fashion_mnist", 60000, 10000, (1, 28, 28), "fashion_mnist"),
    ("cifar10", 50000, 10000, (3, 32, 32), "cifar10 (jpeg q75)"),
])
def test_offline_sources_decode_once_into_the_tensor_cache(name, train, test, shape, label, data_root,
                                                           shared_out):
    path = tensor_cache(name, data_root, shared_out / "cache" / "data")
    images = load_images(path)
    assert (len(images.train_y), len(images.test_y), images.shape, images.label) == (train, test, shape, label)
    assert images.train_x.dtype == torch.uint8 and len(images.classes) == 10
    assert torch.bincount(images.test_y).tolist() == [1000] * 10
    mtime = path.stat().st_mtime_ns
    assert tensor_cache(name, data_root, shared_out / "cache" / "data") == path
    assert path.stat().st_mtime_ns == mtime  # read again, not decoded again


# ---------------------------------------------------------------------------------------------
# Image folders: stray files, corrupt images, the tensor cache
# ---------------------------------------------------------------------------------------------

def _folder(root, corrupt: bool = False, strays: bool = False):
    from PIL import Image

    for c, cls in enumerate(("cat", "dog")):
        (root / cls).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(np.full((32, 32, 3), 50 * c + 10 * i, np.uint8)).save(root / cls / f"{i}.png")
    if corrupt:
        (root / "dog" / "5.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # a PNG signature, then nothing
    if strays:
        (root / "cat" / "README.txt").write_text("where these came from")
        (root / "dog" / "Thumbs.db").write_bytes(b"\0" * 64)
        (root / "dog" / ".DS_Store").write_bytes(b"\0" * 64)
    return root


def _stderr_lines(capsys) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


def test_stray_files_are_skipped_with_one_warning(tmp_path, capsys):
    folder = _folder(tmp_path / "pets", strays=True)
    images = load_images(tensor_cache(f"imagefolder:{folder}", tmp_path, tmp_path / "cache"))
    assert len(images.train_y) + len(images.test_y) == 10 and images.classes == ("cat", "dog")
    lines = _stderr_lines(capsys)
    assert len(lines) == 1 and "skipped 3 files that are not images" in lines[0], lines


def test_a_corrupt_image_stops_unless_skipped_and_the_cache_says_so(tmp_path, capsys):
    from harness.data import DataError

    folder, cache = _folder(tmp_path / "pets", corrupt=True), tmp_path / "cache"
    name = f"imagefolder:{folder}"
    with pytest.raises(DataError, match=f"corrupt image: {folder}/dog/5.png does not decode"):
        tensor_cache(name, tmp_path, cache, skip_bad_images=False)
    assert not cache.exists()
    skipped = tensor_cache(name, tmp_path, cache, skip_bad_images=True)
    assert skipped.name.endswith("-skipbad.pt")  # other content, other file
    lines = _stderr_lines(capsys)
    assert len(lines) == 1 and "skipped 1 corrupt images" in lines[0] and "5.png" in lines[0], lines
    images = load_images(skipped)
    assert len(images.train_y) + len(images.test_y) == 10
    with pytest.raises(DataError, match="corrupt image"):  # a run without the flag still stops
        tensor_cache(name, tmp_path, cache, skip_bad_images=False)
    assert tensor_cache(name, tmp_path, cache) == skipped  # the default takes what the pre-flight decoded


def test_jpegs_decode_to_pils_rgb_pixels_and_a_truncated_one_is_named(tmp_path):
    """JPEGs (RGB, unconverted; grey and CMYK, converted; one resized) decode to PIL's convert("RGB") pixels,
    and a truncated JPEG stops with PIL's reason, or is skipped."""
    from PIL import Image

    from harness.data import DataError, _decode

    rng = np.random.default_rng(0)
    samples = []
    for i, (mode, side) in enumerate([("RGB", 32), ("L", 32), ("CMYK", 32), ("RGB", 40), ("RGB", 32)]):
        path = tmp_path / f"{i}.JPG"
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).convert(mode).save(path, quality=75)
        samples.append((str(path), i))
    arrays, labels = _decode(samples, 32, None)
    for (path, _), array in zip(samples, arrays):
        with Image.open(path) as im:
            im = im.convert("RGB")
            expected = np.asarray(im if im.size == (32, 32) else im.resize((32, 32), Image.BILINEAR))
        assert array.shape == (32, 32, 3) and np.array_equal(array, expected), path
    assert labels == [0, 1, 2, 3, 4]

    cut = tmp_path / "5.jpg"
    cut.write_bytes((tmp_path / "0.JPG").read_bytes()[:300])
    with pytest.raises(DataError, match=f"corrupt image: {cut} does not decode"):
        _decode(samples + [(str(cut), 5)], 32, None)
    skipped = []
    arrays, labels = _decode(samples + [(str(cut), 5)], 32, skipped)
    assert skipped == [str(cut)] and labels == [0, 1, 2, 3, 4]


def test_skip_bad_images_keeps_the_cache_file_of_a_clean_folder(tmp_path, capsys):
    folder = _folder(tmp_path / "pets")
    name = f"imagefolder:{folder}"
    strict = tensor_cache(name, tmp_path, tmp_path / "cache", skip_bad_images=False)
    mtime = strict.stat().st_mtime_ns
    assert tensor_cache(name, tmp_path, tmp_path / "cache", skip_bad_images=True) == strict
    assert strict.stat().st_mtime_ns == mtime and not capsys.readouterr().err
    assert [p.name for p in (tmp_path / "cache").glob("*.pt")] == [strict.name]


def test_a_truncated_tensor_cache_is_decoded_again_with_a_warning(tmp_path, capsys):
    folder = _folder(tmp_path / "pets")
    name, cache = f"imagefolder:{folder}", tmp_path / "cache"
    path = tensor_cache(name, tmp_path, cache)
    whole = path.read_bytes()
    expected = load_images(path)
    path.write_bytes(whole[:len(whole) // 2])  # as a full disk or a killed copy leaves it
    with pytest.raises(Exception):
        load_images(path)
    assert tensor_cache(name, tmp_path, cache) == path
    lines = _stderr_lines(capsys)
    assert len(lines) == 1 and f"tensor cache {path} does not load" in lines[0], lines
    again = load_images(path)
    assert torch.equal(again.train_x, expected.train_x) and torch.equal(again.test_y, expected.test_y)


def test_a_truncated_idx_file_is_named(tmp_path, data_root):
    """torchvision's reader fails on a cut IDX file with a bare AssertionError; ours names the file,
    including the test files torchvision reads only when decoding."""
    from harness.data import DataError, available

    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in (data_root / "FashionMNIST" / "raw").iterdir():
        (raw / f.name).symlink_to(f)
    assert available("fashion_mnist", tmp_path)  # the intact files are accepted
    cut = raw / "t10k-labels-idx1-ubyte"
    data = cut.read_bytes()
    cut.unlink()
    cut.write_bytes(data[:-1])
    with pytest.raises(DataError, match=f"{cut} is truncated: its header promises 10008 bytes, the file has 10007"):
        tensor_cache("fashion_mnist", tmp_path, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()
