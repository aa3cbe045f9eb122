"""Image-generation metrics through torch-fidelity: FID in our own classifier's feature space (always
available), and FID / IS / KID in Inception-v3's (only with the Inception weights on disk).

Both go through ``torch_fidelity.calculate_metrics``; nothing here re-implements a metric. Images are uint8
NCHW tensors, as everywhere in gansweep (``harness.data``). Conventions:

- ``input1`` is the generated set and ``input2`` the real set, as in torch-fidelity's own examples
  (``input1="generated", input2="cifar10-train"``). It matters: torch-fidelity computes IS on ``input1`` only.
- Only the real set is ever cached (its statistics and features barely change within a sweep, while the
  generated set changes every epoch). torch-fidelity's cache file names are
  ``<input2_cache_name>-<extractor name>-stat-fid-<layer>.pt`` (plus ``...-features-<layer>.pt``): they
  contain neither the extractor's weights nor the data, so a reused name silently serves stale statistics.
  Our ``input2_cache_name`` therefore carries a content hash of both (:func:`data_hash`, :func:`weights_hash`).
- Without Inception weights torch-fidelity downloads them from GitHub. Offline that hangs or fails, so
  :func:`inception_metrics` then returns every value as ``None`` with the reason, and never calls
  torch-fidelity; a missing metric is recorded as missing, never faked.
- Measuring never touches what training reads (issue 7, item 8): both metrics run with every global RNG
  restored afterwards (:func:`isolated_rng`; torch-fidelity's DataLoader draws its base seed from torch's
  global RNG on every pass), the classifier is measured in eval mode and handed back in its previous
  mode, and the callers sample their images from a stream of their own (:func:`measurement_rng`)
  and compare them with a seeded class-balanced reference set (:func:`balanced_sample`).
"""

from __future__ import annotations

import functools
import hashlib
import os
import random
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn as nn

from harness.data import to_float
from harness.models import Classifier

# Metric names are defined once, in harness.metrics (what trainables report and reports read).
from harness.metrics import (FID_CLASSIFIER, FID_INCEPTION, IS_MEAN, IS_STD, KID_MEAN, KID_STD,  # noqa: E402
                             METRIC_MISSING_REASON)

# :func:`inception_metrics` keys -> the metric names above, for ``tune.report``.
REPORT_NAMES = {
    "fid": FID_INCEPTION,
    "isc_mean": IS_MEAN,
    "isc_std": IS_STD,
    "kid_mean": KID_MEAN,
    "kid_std": KID_STD,
    "missing_reason": METRIC_MISSING_REASON,
}

CLASSIFIER_EXTRACTOR = "gansweep-classifier"  # our name in torch-fidelity's feature-extractor registry
PENULTIMATE = "penultimate"  # feature layer: ``Classifier.features(x)``, (N, feature_dim)
LOGITS = "logits"  # feature layer: ``Classifier.head`` output, (N, num_classes)

INCEPTION_EXTRACTOR = "inception-v3-compat"
# The file torch-fidelity 0.4.0 downloads (URL_INCEPTION_V3, the TF "pt_inception-2015-12-05" graph converted
# to PyTorch); torch.hub would store it as <hub dir>/checkpoints/<this name>.
INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_BATCH_SIZE = 64  # images per Inception forward; 299x299 after resizing, so keep it modest

HASH_CHARS = 16  # hex characters kept of a sha256, as elsewhere in gansweep (config_hash, stage_key)


# ----------------------------------------------------------------------------------------------------------
# Content hashes (cache names)


def data_hash(x: torch.Tensor) -> str:
    """sha256 of a tensor's dtype, shape and bytes, as 16 hex characters."""
    h = hashlib.sha256(f"{x.dtype}|{tuple(x.shape)}|".encode())
    flat = x.detach().cpu().contiguous().reshape(-1)
    # NOTE: viewed as bytes so every dtype hashes (numpy has no bfloat16).
    h.update(memoryview(flat.view(torch.uint8).numpy()))
    return h.hexdigest()[:HASH_CHARS]


_FILE_HASHES: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> hash; Inception is 95 MB


def weights_hash(weights: nn.Module | str | Path) -> str:
    """sha256 of a module's ``state_dict`` (names, dtypes, shapes, bytes; buffers such as BatchNorm's running
    statistics included, since they change eval-mode features) or of a weights file's bytes; 16 hex chars."""
    if isinstance(weights, nn.Module):
        h = hashlib.sha256()
        for name, t in sorted(weights.state_dict().items()):
            h.update(f"{name}|".encode())
            h.update(data_hash(t).encode())
        return h.hexdigest()[:HASH_CHARS]
    path = Path(weights).resolve()
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _FILE_HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _FILE_HASHES[key] = h.hexdigest()[:HASH_CHARS]
    return _FILE_HASHES[key]


def real_cache_name(real_u8: torch.Tensor, weights: nn.Module | str | Path, extractor: str) -> str:
    """torch-fidelity's ``input2_cache_name`` for a real set: ``real-<data hash>-<extractor>-<weights hash>``.

    torch-fidelity appends ``-<extractor name>-stat-fid-<layer>`` (and ``-features-<layer>``) to it, so a
    different classifier, Inception file or image set always gets a different file.
    """
    return f"real-{data_hash(real_u8)}-{extractor}-{weights_hash(weights)}"


# ----------------------------------------------------------------------------------------------------------
# Our classifier as a torch-fidelity feature extractor


class ClassifierFeatures:
    """torch-fidelity feature extractor over a live :class:`harness.models.Classifier` (the methods; the class
    torch-fidelity instantiates is :func:`fidelity`'s subclass of this and its ``FeatureExtractorBase``).

    Features: ``"penultimate"`` (``classifier.features(x)``, the default for FID / KID / PRC) and ``"logits"``
    (the default for IS). Input: uint8 NCHW batches, converted as everywhere in gansweep (x / 127.5 - 1);
    grey input to a 3-channel classifier is repeated, RGB input to a 1-channel one is averaged (unweighted,
    which is exact for grey images stored as RGB).

    How the live classifier gets in: torch-fidelity instantiates extractors by registered name as
    ``cls(name, features_list, **kwargs)`` with *all* of ``calculate_metrics``' keyword arguments (that is how
    its Inception extractor reads ``feature_extractor_weights_path`` and ``verbose``), and unknown keywords are
    ignored everywhere else. So the caller passes ``gansweep_classifier=model`` to ``calculate_metrics``.
    Chosen over a module-level slot keyed by a hash: no global state, nothing to clean up, safe with threads;
    and over ``feature_extractor_weights_path``: that is a path, a live module is not.

    NOTE: the classifier is deliberately *not* a registered submodule. torch-fidelity calls
    ``requires_grad_(False)``, ``eval()`` and ``cuda()`` on the extractor it builds; as a submodule, the
    model being trained would silently come back frozen. :func:`classifier_fid` sets eval mode for the
    call and restores the previous mode.
    """

    def __init__(self, name: str, features_list: list[str], gansweep_classifier: Classifier | None = None,
                 **kwargs):
        super().__init__(name, features_list)
        if not isinstance(gansweep_classifier, Classifier):
            raise ValueError(f"feature extractor {name!r} needs calculate_metrics(..., "
                             f"gansweep_classifier=<harness.models.Classifier>), got {type(gansweep_classifier)}")
        object.__setattr__(self, "classifier", gansweep_classifier)  # bypasses nn.Module registration
        self.in_channels = _in_channels(gansweep_classifier)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if x.dtype != torch.uint8 or x.dim() != 4:
            raise ValueError(f"expected uint8 NCHW images, got {x.dtype} {tuple(x.shape)}")
        x = to_float(x)
        if x.shape[1] != self.in_channels:
            if self.in_channels == 1 and x.shape[1] == 3:
                x = x.mean(dim=1, keepdim=True)
            elif self.in_channels == 3 and x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            else:
                raise ValueError(f"the classifier takes {self.in_channels} channels, the images have {x.shape[1]}")
        out = {PENULTIMATE: self.classifier.features(x)}
        if LOGITS in self.features_list:
            out[LOGITS] = self.classifier.head(out[PENULTIMATE])
        return tuple(out[name].float() for name in self.features_list)

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return PENULTIMATE, LOGITS

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return {"isc": LOGITS, "fid": PENULTIMATE, "kid": PENULTIMATE, "prc": PENULTIMATE}[metric]

    @staticmethod
    def can_be_compiled() -> bool:
        return False  # a different live network every call: compiling would only add recompilations

    @staticmethod
    def get_dummy_input_for_compile() -> torch.Tensor:
        return torch.zeros(1, 3, 32, 32, dtype=torch.uint8)


@functools.cache
def fidelity():
    """The ``torch_fidelity`` module, imported on first use, with :class:`ClassifierFeatures` registered.

    NOTE: not imported at the top: torch-fidelity imports torchvision and with it torch._dynamo, ~1.9 s of every
    process that imports the trainables (each CLI command, each Ray worker) whether it measures a FID or not
    (python -X importtime, 2026-12-02). torch-fidelity refuses a second registration of a name (e.g. after
    importlib.reload of this module), hence the guard."""
    import torch_fidelity
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    if CLASSIFIER_EXTRACTOR not in FEATURE_EXTRACTORS_REGISTRY:
        extractor = type("ClassifierFeatures", (ClassifierFeatures, torch_fidelity.FeatureExtractorBase),
                         {"__module__": __name__})
        torch_fidelity.register_feature_extractor(CLASSIFIER_EXTRACTOR, extractor)
    return torch_fidelity


def _in_channels(classifier: nn.Module) -> int:
    """Input channels of the first convolution (every network of the zoo starts with one)."""
    for m in classifier.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    raise ValueError(f"cannot tell the input channels of {type(classifier).__name__}: it has no Conv2d")


# ----------------------------------------------------------------------------------------------------------
# Measurement hygiene: own RNG streams, global RNGs and module modes untouched, a balanced reference set


@contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Eval mode (BatchNorm running statistics, no dropout: AlexNet's features see dropout in train mode)
    for the duration; each module's previous mode afterwards.

    NOTE: per submodule, not ``module.train(was_training)``: that would also flip submodules someone froze
    in eval mode on purpose (a classifier's BatchNorm, say) back to training."""
    modes = [(m, m.training) for module in modules for m in module.modules()]
    for module in modules:
        module.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


@contextmanager
def isolated_rng() -> Iterator[None]:
    """Every global random state (torch's CPU and CUDA generators, numpy's, Python's) is as it was on entry
    when the block ends, whatever the block drew.

    For measurements, so that how often or how much is measured cannot change training: torch-fidelity's
    DataLoader draws ``_base_seed`` from torch's global RNG on each pass over a set (torch 2.x,
    ``_BaseDataLoaderIter.__init__``), and training draws dropout masks from that same RNG."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


def measurement_rng(seed: int, epoch: int, purpose: str) -> torch.Generator:
    """A CPU generator of its own for one measurement, seeded from (trial seed, epoch, purpose) only.

    So a measurement draws nothing from the training generator, and its value at an epoch does not depend
    on how often it was measured before (``fid_every``); distinct purposes ("fid", "grid", ...) get
    independent streams."""
    digest = hashlib.sha256(f"gansweep-measurement|{seed}|{epoch}|{purpose}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)  # < 2**63


def balanced_sample(y: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """Indices (sorted, on ``y``'s device) of a seeded class-balanced sample of ``n`` labels from ``y``.

    Every class gets ``n // K`` or one more (the classes getting one more are drawn at random), a class
    with fewer images than that gives all of them and the others fill in; within a class the images are a
    uniform random choice. A reference set must not be ``x[:n]``: the JPEG CIFAR-10 is stored sorted by
    class, so its first 2,000 test images are airplanes and automobiles only."""
    if not 0 < n <= len(y):
        raise ValueError(f"cannot draw {n} of {len(y)} labels")
    order = torch.randperm(len(y), generator=generator)  # a random order, then round-robin over the classes
    y_cpu = y.detach().cpu()[order]
    rank = torch.empty(len(y), dtype=torch.long)  # position of each image among its class in that order
    for c in y_cpu.unique():
        at = torch.nonzero(y_cpu == c).flatten()
        rank[at] = torch.arange(len(at))
    # Rank first: every class gives its r-th image before any gives its (r+1)-th; ties in random order.
    take = torch.argsort(rank * len(y) + torch.arange(len(y)))[:n]
    return order[take].sort().values.to(y.device)


# ----------------------------------------------------------------------------------------------------------
# Inputs


class _U8Images(torch.utils.data.Dataset):
    """uint8 NCHW tensor -> the per-image Dataset torch-fidelity reads (``input[i]`` is a CHW uint8 tensor)."""

    def __init__(self, x: torch.Tensor):
        # NOTE: on the CPU, because torch-fidelity's DataLoader pins memory when cuda=True, which fails for
        # CUDA tensors; it moves each batch to the GPU itself.
        self.x = x.detach().cpu()

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


def _check_images(x: torch.Tensor, what: str) -> None:
    if not (isinstance(x, torch.Tensor) and x.dtype == torch.uint8 and x.dim() == 4 and x.shape[1] in (1, 3)):
        raise ValueError(f"{what} images must be a uint8 (N, 1|3, H, W) tensor, got "
                         f"{getattr(x, 'dtype', type(x))} {tuple(getattr(x, 'shape', ()))}")
    if len(x) < 2:  # a covariance, and KID's unbiased estimate, need two samples
        raise ValueError(f"{what} images: need at least 2, got {len(x)}")


def _cache_kwargs(cache_dir: Path | None, real_name: str | None) -> dict:
    if cache_dir is None:
        return {"cache": False}
    return {"cache": True, "cache_root": str(cache_dir), "input2_cache_name": real_name}


# Passed on every call. save_cpu_ram=True is torch-fidelity's only way to get num_workers=0 in its DataLoader
# (otherwise min(4, 2 * cpu_count) worker processes, which would only copy tensors already in memory, and
# fork inside a Ray worker); verbose=False keeps its progress bars out of the trial logs.
_COMMON = {"save_cpu_ram": True, "verbose": False}


# ----------------------------------------------------------------------------------------------------------
# Metrics


def classifier_fid(classifier: Classifier, real_u8: torch.Tensor, fake_u8: torch.Tensor,
                   cache_dir: Path | None = None, batch_size: int = 256) -> float:
    """FID between real and generated images in the penultimate feature space of ``classifier``.

    FID = |mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)), the Frechet distance between Gaussians fitted
    to the two feature sets (Heusel et al. 2017, "GANs trained by a two time-scale update rule converge to a
    local Nash equilibrium", Eq. 6), computed by torch-fidelity with :class:`ClassifierFeatures`.
    Unlike Inception FID it needs no download and sees the data set's own classes, but values are comparable
    only between runs that use the same classifier weights.

    The classifier runs in eval mode on its own device (CUDA if its parameters are there); its mode is restored
    afterwards. With ``cache_dir``, the real set's statistics are cached under :func:`real_cache_name` (hash of
    the images and of the classifier's ``state_dict``); the generated set is never cached.
    """
    _check_images(real_u8, "real")
    _check_images(fake_u8, "fake")
    cuda = next(classifier.parameters()).is_cuda
    name = real_cache_name(real_u8, classifier, "clf") if cache_dir is not None else None
    tf = fidelity()
    with eval_mode(classifier), isolated_rng():
        out = tf.calculate_metrics(
            input1=_U8Images(fake_u8), input2=_U8Images(real_u8), fid=True,
            feature_extractor=CLASSIFIER_EXTRACTOR, feature_layer_fid=PENULTIMATE, gansweep_classifier=classifier,
            cuda=cuda, batch_size=batch_size, **_cache_kwargs(cache_dir, name), **_COMMON,
        )
    return float(out[tf.KEY_METRIC_FID])


def inception_weights(path: str | Path | None = None) -> Path | None:
    """The Inception-v3 weights file torch-fidelity uses (:data:`INCEPTION_WEIGHTS_FILE`): ``path`` if given
    and it exists, else ``<torch.hub.get_dir()>/checkpoints/<that file>`` if present, else None."""
    if path is not None and Path(path).is_file():
        return Path(path)
    hub = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_FILE
    return hub if hub.is_file() else None


def _missing(reason: str) -> dict:
    return {"fid": None, "isc_mean": None, "isc_std": None, "kid_mean": None, "kid_std": None,
            "missing_reason": reason}


def _rgb(x: torch.Tensor) -> torch.Tensor:
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x  # torch-fidelity's Inception takes 3 channels


def inception_metrics(real_u8: torch.Tensor, fake_u8: torch.Tensor, weights: Path | None,
                      cache_dir: Path | None = None, kid_subset_size: int = 1000, *,
                      batch_size: int = INCEPTION_BATCH_SIZE, cuda: bool | None = None) -> dict:
    """FID, IS and KID in the feature space of torch-fidelity's Inception-v3 (``inception-v3-compat``, the
    TF-FID graph: bilinear resize to 299x299, pool3 2048-d features, 1008-way logits).

    - FID (Heusel et al. 2017): Frechet distance between Gaussians fitted to pool3 features, as in
      :func:`classifier_fid`.
    - IS (Salimans et al. 2016, "Improved techniques for training GANs", Sec. 4):
      exp(E_x KL(p(y|x) || p(y))) over the generated set's logits, mean and std over 10 splits.
    - KID (Binkowski et al. 2018, "Demystifying MMD GANs", Sec. 3): the unbiased MMD^2 between pool3 features
      with the kernel k(a, b) = (a.b / d + 1)^3, mean and std over 100 random subsets of
      ``min(kid_subset_size, len(real), len(fake))`` images from each set.

    Returns ``{"fid", "isc_mean", "isc_std", "kid_mean", "kid_std", "missing_reason"}`` (map the keys with
    :data:`REPORT_NAMES`). When ``weights`` is None or not a file, every value is None and ``missing_reason``
    says why; torch-fidelity is then not called at all, because it would try to download the weights.
    Grey images are repeated to 3 channels. With ``cache_dir``, the real set's features and statistics are
    cached under :func:`real_cache_name` (hash of the images and of the weights file). ``cuda`` defaults to
    ``torch.cuda.is_available()``.
    """
    if weights is None:
        hub = Path(torch.hub.get_dir()) / "checkpoints"
        return _missing(f"no Inception weights: pass --inception-weights PATH or put {INCEPTION_WEIGHTS_FILE} "
                        f"in {hub}")
    weights = Path(weights)
    if not weights.is_file():
        return _missing(f"no Inception weights: {weights} is not a file")
    _check_images(real_u8, "real")
    _check_images(fake_u8, "fake")
    if cuda is None:
        cuda = torch.cuda.is_available()
    name = real_cache_name(real_u8, weights, "inception") if cache_dir is not None else None
    tf = fidelity()
    with isolated_rng():
        out = tf.calculate_metrics(
            input1=_U8Images(_rgb(fake_u8)), input2=_U8Images(_rgb(real_u8)), isc=True, fid=True, kid=True,
            feature_extractor=INCEPTION_EXTRACTOR, feature_extractor_weights_path=os.fspath(weights),
            kid_subset_size=min(kid_subset_size, len(real_u8), len(fake_u8)),
            cuda=cuda, batch_size=batch_size, **_cache_kwargs(cache_dir, name), **_COMMON,
        )
    return {
        "fid": float(out[tf.KEY_METRIC_FID]),
        "isc_mean": float(out[tf.KEY_METRIC_ISC_MEAN]),
        "isc_std": float(out[tf.KEY_METRIC_ISC_STD]),
        "kid_mean": float(out[tf.KEY_METRIC_KID_MEAN]),
        "kid_std": float(out[tf.KEY_METRIC_KID_STD]),
        "missing_reason": None,
    }
