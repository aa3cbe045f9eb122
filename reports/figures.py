"""Figures (seaborn/matplotlib PNGs): every table's cells, and the paper's figures.

``cells`` draws a block of a table from its summary: our mean per cell with its 95% CI over seeds, the
paper's number as a distinct marker, and the paired gains. The paper's figures come from a trial's
figure data (``<out>/artifacts/<config hash>/``): each renderer takes what ``gan_distillation`` saved at
its last epoch and writes PNG files: t-SNE of easy / hard / generated features (Pennisi Fig. 2 and 4,
via scikit-learn), FID and test accuracy per distillation epoch (Fig. 3), sample grids before and
after distillation (Fig. 5).
"""

from __future__ import annotations

import math
import textwrap
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


# ---- a table's cells -----------------------------------------------------------------------------

def cells(table, summary: pd.DataFrame, gains: pd.DataFrame, labels: dict, path: Path, title: str) -> Path:
    """One block of a table (``reports.tables.summarize`` rows of one dataset and profile): a panel per
    metric (a FID is not drawn on an accuracy axis) and one of the paired gains (``paired_gains``).

    Columns are the x axis and rows the colours, as in the table; a one-column table puts its rows on
    the x axis. Our mean is a dot with its 95% t CI (no bar for one seed), the paper's number a hollow
    black diamond at the same place. Panels are stacked, so that the figure fits beside its table.
    """
    panels = [(labels.get(m, m), summary[summary["metric"] == m], False) for m in dict.fromkeys(summary["metric"])]
    shown = gains[(gains["n"] > 0) | gains["paper"].notna()]
    if len(shown):
        panels.append(("gain, paired over seeds", shown, True))
    names = list(dict.fromkeys([*table.rows, *gains["row"]]))
    palette = dict(zip(names, sns.color_palette("colorblind", len(names))))
    width = max(3.2, *(_width(frame) for _, frame, _ in panels))
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(len(panels), 1, figsize=(width + 0.6, 3.1 * len(panels) + 0.6), squeeze=False)
    for ax, (ylabel, frame, signed) in zip(axes[:, 0], panels):
        hues = _points(ax, frame, palette, ylabel, signed, len(table.cols) > 1)
        if hues:  # the rows of this panel, as colours
            ax.legend(handles=[plt.Line2D([], [], marker="o", ls="none", color=palette[r], label=r) for r in hues],
                      fontsize=7, loc="best", framealpha=0.8)
    handles = [plt.Line2D([], [], marker="o", ls="none", color="dimgrey", label="ours: mean ± 95% CI")]
    if any(frame["paper"].notna().any() for _, frame, _ in panels):
        handles.append(plt.Line2D([], [], marker="D", ls="none", mfc="none", mec="black", ms=8, label="paper"))
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, frameon=False, fontsize=9)
    fig.suptitle(textwrap.fill(f"{table.name}: {title}", int(12 * width)), fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _width(frame: pd.DataFrame) -> float:
    """A panel's width (inches): room for each category's wrapped label, and for each dodged row in it."""
    cols, rows = frame["col"].nunique(), frame["row"].nunique()
    return 1.2 + (cols * (0.4 + 0.3 * rows) if cols > 1 else 0.85 * rows)


def _points(ax, frame: pd.DataFrame, palette: dict, ylabel: str, gain: bool, name_col: bool) -> list[str]:
    """Dots with CI bars and paper diamonds; returns the rows drawn as colours (a legend's entries).
    ``name_col``: a one-column panel of a many-column table (a metric of its own) names its column."""
    cols, rows = list(dict.fromkeys(frame["col"])), list(dict.fromkeys(frame["row"]))
    by_col = len(cols) > 1
    categories = cols if by_col else rows
    step = 0.7 / len(rows) if by_col else 0.0  # dodge the rows inside a column
    for i, category in enumerate(categories):
        members = frame[frame["col" if by_col else "row"] == category]
        for j, r in enumerate(rows if by_col else [category]):
            match = members[members["row"] == r]
            if match.empty:
                continue
            s = match.iloc[0]
            x = i + (j - (len(rows) - 1) / 2) * step if by_col else i
            if s["n"] > 0:
                ax.errorbar(x, s["mean"], yerr=None if math.isnan(s["ci"]) else s["ci"], fmt="o", ms=6, capsize=4,
                            color=palette[r] if by_col else "C0", elinewidth=1.5)
            if not math.isnan(s["paper"]):
                ax.plot(x, s["paper"], marker="D", ls="none", mfc="none", mec="black", ms=8, mew=1.4)
    ticks = [f"{c} ({cols[0]})" if name_col and not by_col else c for c in categories]
    ax.set_xticks(range(len(categories)), [textwrap.fill(c, 12) for c in ticks], fontsize=8)
    ax.set_xlim(-0.6, len(categories) - 0.4)
    if gain:
        ax.axhline(0, color="grey", lw=1, ls="--")
    if not (frame["n"] > 0).any():  # e.g. an Inception FID without Inception weights: the notes say why
        ax.text(0.5, 0.92, "ours: no value (see the notes)", transform=ax.transAxes, ha="center", va="center",
                color="grey")
    ax.set_ylabel(textwrap.fill(ylabel, 38), fontsize=9)
    return rows if by_col else []


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
