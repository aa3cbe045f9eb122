"""Paper figures (seaborn/matplotlib PNGs) from a trial's figure data (``<out>/artifacts/<config hash>/``).

Each renderer takes the figure data that ``gan_distillation`` saved at its last epoch and writes
PNG files: t-SNE of easy / hard / generated features (Pennisi Fig. 2 and 4, via scikit-learn), FID and
test accuracy per distillation epoch (Fig. 3), sample grids before and after distillation (Fig. 5).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
import torch  # noqa: E402

from harness import metrics as M  # noqa: E402

TSNE_SEED = 0


def _tsne(features: list[torch.Tensor]) -> list[np.ndarray]:
    """One 2-D t-SNE embedding of the concatenated feature sets, split back per set."""
    from sklearn.manifold import TSNE

    x = torch.cat(features).float().numpy()
    emb = TSNE(n_components=2, perplexity=min(30, max(5, len(x) // 10)), random_state=TSNE_SEED,
               init="pca").fit_transform(x)
    return np.split(emb, np.cumsum([len(f) for f in features])[:-1])


def _scatter(ax, emb: np.ndarray, labels: torch.Tensor, title: str, **kw) -> None:
    sns.scatterplot(x=emb[:, 0], y=emb[:, 1], hue=labels.numpy(), palette="tab10", s=kw.pop("s", 10),
                    legend=False, ax=ax, **kw)
    ax.set(title=title, xticks=[], yticks=[])


def tsne(payload: dict, folder: Path) -> list[Path]:
    """Fig. 2: (a) easy and (b) hard samples before distillation, in the pre-trained classifier's
    feature space; (c) generated samples after distillation, in the distilled classifier's space."""
    f, lab = payload["features"], payload["labels"]
    easy, hard = _tsne([f["easy_before"], f["hard_before"]])
    (gen,) = _tsne([f["generated_after"]])
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    _scatter(axes[0], easy, lab["easy"], "(a) easy samples before GAN distillation")
    _scatter(axes[1], hard, lab["hard"], "(b) hard samples before GAN distillation")
    _scatter(axes[2], gen, lab["generated"], "(c) samples generated after GAN distillation")
    return [_save(fig, folder / "fig_tsne.png")]


def tsne_collapsed(payload: dict, folder: Path) -> list[Path]:
    """Fig. 4: generated samples after distillation (large markers) over the easy samples, one t-SNE
    in the distilled classifier's feature space."""
    f, lab = payload["features"], payload["labels"]
    easy, gen = _tsne([f["easy_after"], f["generated_after"]])
    fig, ax = plt.subplots(figsize=(6, 5))
    _scatter(ax, easy, lab["easy"], "generated (x) over easy samples (.)", alpha=0.5)
    _scatter(ax, gen, lab["generated"], "generated (x) over easy samples (.)", marker="X", s=40, edgecolor="k")
    return [_save(fig, folder / "fig_tsne_collapsed.png")]


def curves(payload: dict, folder: Path) -> list[Path]:
    """Fig. 3: FID of the generator (classifier feature space) and test accuracy per epoch."""
    h = pd.DataFrame(payload["history"])
    fig, axes = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    sns.lineplot(data=h, x=M.EPOCH, y=M.FID_CLASSIFIER, marker="o", ax=axes[0])
    axes[0].set(ylabel="FID (classifier features)", title="FID of the generator during GAN distillation")
    sns.lineplot(data=h, x=M.EPOCH, y=M.TEST_ACC, marker="o", ax=axes[1], color="C1")
    axes[1].set(ylabel="test accuracy (%)", xlabel="distillation epoch")
    collapsed = h[h[M.DIVERSITY_RATIO] < payload.get("collapse_ratio", 0.2)][M.EPOCH]
    if len(collapsed):
        for ax in axes:
            ax.axvline(collapsed.iloc[0], color="grey", linestyle="--", label="mode collapse")
        axes[0].legend()
    return [_save(fig, folder / "fig_fid_accuracy.png")]


def _grid(images: torch.Tensor, nrow: int) -> np.ndarray:
    from torchvision.utils import make_grid

    grid = make_grid(images, nrow=nrow, padding=1, pad_value=255)
    return grid.permute(1, 2, 0).numpy()


def grids(payload: dict, folder: Path) -> list[Path]:
    """Fig. 5: samples of the pre-trained generator (before) and of the distilled one (after); one
    column per class."""
    k = int(payload["labels"]["generated"].max()) + 1
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.5))
    for ax, key, title in ((axes[0], "grid_before", "before distillation"), (axes[1], "grid_after", "after")):
        images = payload[key]
        ax.imshow(_grid(images, k), cmap="gray" if images.shape[1] == 1 else None)
        ax.set(title=title, xticks=[], yticks=[])
    return [_save(fig, folder / "fig_samples.png")]


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


RENDERERS = {"tsne": tsne, "tsne_collapsed": tsne_collapsed, "curves": curves, "grids": grids}
