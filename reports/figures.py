"""Figures (seaborn/matplotlib PNGs): every table's cells, and the paper's figures.

``cells`` draws a block of a table from its summary: our mean per cell with its 95% CI over seeds, the
paper's number as a distinct marker, and the paired gains.

A figure table (``Table.figure`` names a renderer here) is drawn per block (dataset, profile, overrides) from a
:class:`FigureBlock`: its cells' summary over seeds, its finished trials' results rows, and the figure data
its trials saved (``<out>/artifacts/<identity>/``). Renderers, registered by function name:
- from a trial's figure data: ``gan_distillation``'s last epoch: t-SNE of easy / hard / generated features
  (Pennisi Figs. 2 and 4, via scikit-learn), FID and test accuracy per distillation epoch (Fig. 3), sample grids
  before and after distillation (Fig. 5); ``filtered_sampling`` / ``multi_gan``'s: samples before and after the
  filter (Pham Figs. 3-4) and of two GANs side by side (Figs. 8-9), t-SNE of real vs generated features (Slim
  Fig. 1) and of one class's sample weights (Slim Fig. 2);
- from the cells' results: error against the real subset's size (Pham Figs. 1-2) and against the filter's
  threshold (Fig. 5), per-class filter counts (Figs. 6-7).
"""

from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

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


# ---- figure tables ---------------------------------------------------------------------------------

class NoFigureData(Exception):
    """A block's trials saved no figure data (older runs, or run without an artifacts folder)."""


@dataclass(frozen=True)
class FigureBlock:
    """One block (dataset, profile, overrides) of a figure table: what its renderer draws from."""

    table: Any  # the search_spaces.Table
    heading: str  # the block's dataset, profile and substitutions (the report's block heading)
    stem: str  # file-name stem of the block's PNGs
    summary: pd.DataFrame  # its cells over seeds (reports.tables.summarize rows)
    rows: pd.DataFrame  # its finished (ok) trials' results rows, the latest per cell and seed
    artifacts: Path | None = None  # <out>/artifacts: each trial's figure data in <identity>/

    @property
    def ran_cells(self) -> list:
        """The table's cells that have finished trials in this block, in the table's order."""
        ran = set(self.rows["cell"])
        return [c for c in self.table.cells if c.name in ran]

    def data(self, cell=None) -> dict:
        """The figure data a trial of ``cell`` (default: the table's first cell) saved, lowest seed first: the
        one ``.pt`` file its trainable wrote into its artifacts folder. Raises :class:`NoFigureData`."""
        cell = cell or self.table.cells[0]
        trials = self.rows[self.rows["cell"] == cell.name].sort_values("seed")
        for identity in trials["identity"] if self.artifacts else []:
            files = sorted((Path(self.artifacts) / identity).glob("*.pt"))
            if files:
                return torch.load(files[0], weights_only=False)
        raise NoFigureData(f"No figure data under {self.artifacts} for the trials of {cell.name} ({self.heading}).")


RENDERERS: dict[str, Callable[[FigureBlock, Path], list[Path]]] = {}


def renderer(fn: Callable[[FigureBlock, Path], list[Path]]):
    """Register a figure renderer under its function name, the name a ``Table.figure`` gives."""
    RENDERERS[fn.__name__] = fn
    return fn


def _save(fig, path: Path, block: FigureBlock | None = None, note: str = "") -> Path:
    """Write ``fig`` to ``path``: laid out, then titled with ``block``'s table and budget (dataset, profile)
    above the axes and ``note`` under them (placed after the layout, so never over a panel; the saved
    bounding box takes them in)."""
    engine = fig.get_layout_engine()  # a constrained layout places a suptitle itself, at draw time
    if engine is None:
        fig.tight_layout()
    if block is not None:
        fig.suptitle(textwrap.fill(f"{block.table.name}: {block.table.title}", 120) + "\n"
                     + textwrap.fill(block.heading, 140), fontsize=9, **({} if engine else {"y": 1.0, "va": "bottom"}))
    if note:
        fig.text(0.5, 0.0, textwrap.fill(note, 160), ha="center", va="top", fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _tsne(features: list[torch.Tensor]) -> list[np.ndarray]:
    """One 2-D t-SNE embedding of the concatenated feature sets, split back per set."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    x = torch.cat(features).float().numpy()
    # NOTE: one OpenMP thread: with two on a 2-core machine busy with trials, 80 points took 4-10 s, with one 0.5 s
    with threadpool_limits(1):
        emb = TSNE(n_components=2, perplexity=min(30, max(5, len(x) // 10)), random_state=TSNE_SEED,
                   init="pca").fit_transform(x)
    return np.split(emb, np.cumsum([len(f) for f in features])[:-1])


def _scatter(ax, emb: np.ndarray, labels: torch.Tensor, title: str, **kw) -> None:
    sns.scatterplot(x=emb[:, 0], y=emb[:, 1], hue=labels.numpy(), palette="tab10", s=kw.pop("s", 10),
                    legend=False, ax=ax, **kw)
    ax.set(title=title, xticks=[], yticks=[])


def _grid(images: torch.Tensor, nrow: int) -> np.ndarray:
    from torchvision.utils import make_grid

    grid = make_grid(images, nrow=nrow, padding=1, pad_value=255)
    return grid.permute(1, 2, 0).numpy()


# ---- Pennisi 2021: from gan_distillation's figure data (its last epoch) --------------------------------

@renderer
def tsne(block: FigureBlock, folder: Path) -> list[Path]:
    """Pennisi Fig. 2: (a) easy and (b) hard samples before distillation, in the pre-trained classifier's
    feature space; (c) generated samples after distillation, in the distilled classifier's space."""
    payload = block.data()
    f, lab = payload["features"], payload["labels"]
    easy, hard = _tsne([f["easy_before"], f["hard_before"]])
    (gen,) = _tsne([f["generated_after"]])
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    _scatter(axes[0], easy, lab["easy"], "(a) easy samples before GAN distillation")
    _scatter(axes[1], hard, lab["hard"], "(b) hard samples before GAN distillation")
    _scatter(axes[2], gen, lab["generated"], "(c) samples generated after GAN distillation")
    return [_save(fig, folder / f"{block.stem}.png", block)]


@renderer
def tsne_collapsed(block: FigureBlock, folder: Path) -> list[Path]:
    """Pennisi Fig. 4: generated samples after distillation (large markers) over the easy samples, one t-SNE
    in the distilled classifier's feature space."""
    payload = block.data()
    f, lab = payload["features"], payload["labels"]
    easy, gen = _tsne([f["easy_after"], f["generated_after"]])
    fig, ax = plt.subplots(figsize=(6, 5))
    _scatter(ax, easy, lab["easy"], "generated (x) over easy samples (.)", alpha=0.5)
    _scatter(ax, gen, lab["generated"], "generated (x) over easy samples (.)", marker="X", s=40, edgecolor="k")
    return [_save(fig, folder / f"{block.stem}.png", block)]


@renderer
def curves(block: FigureBlock, folder: Path) -> list[Path]:
    """Pennisi Fig. 3: FID of the generator (classifier feature space) and test accuracy per epoch."""
    payload = block.data()
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
    return [_save(fig, folder / f"{block.stem}.png", block)]


@renderer
def grids(block: FigureBlock, folder: Path) -> list[Path]:
    """Pennisi Fig. 5: samples of the pre-trained generator (before) and of the distilled one (after); one
    column per class."""
    payload = block.data()
    k = int(payload["labels"]["generated"].max()) + 1
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.5))
    for ax, key, title in ((axes[0], "grid_before", "before distillation"), (axes[1], "grid_after", "after")):
        images = payload[key]
        ax.imshow(_grid(images, k), cmap="gray" if images.shape[1] == 1 else None)
        ax.set(title=title, xticks=[], yticks=[])
    return [_save(fig, folder / f"{block.stem}.png", block)]


# ---- Pham 2019: from the cells' results, and from filtered_sampling / multi_gan's figure data --------------

# The filter's verdicts (the names of the trainables' ``verdict_codes``) -> FilterCounts.metrics()'s result column
# (harness/synthetic.py: per class, the run's generated images with that verdict, summed over its epochs), the
# legend's label and a colour. NOTE: the columns are literals there; they belong in harness.metrics with the others.
VERDICTS = {"accepted": ("filter_accepted", "accepted", "tab:blue"),
            "wrong_label": ("filter_wrong_label", "rejected: wrong label", "tab:red"),
            "low_prob": ("filter_low_prob", "rejected: label right, probability below the threshold", "tab:orange")}
FILTER_FORCED, GENERATED = "filter_forced", "generated_images"  # slots filled with a rejected draw; all draws
SIZE = re.compile(r"(\d+(?:\.\d+)?)K$")  # a column of real images, labelled as Pham does ("10K" .. "50K")


def _size(col: str) -> float:
    """A real-subset column's size in thousands of images ("10K" -> 10); NaN for another column."""
    m = SIZE.match(col)
    return float(m.group(1)) if m else math.nan


def _seeds(s: pd.DataFrame) -> str:
    n = sorted(set(int(v) for v in s["n"] if v > 0))
    return "no seed" if not n else f"n = {n[0]}" if len(n) == 1 else f"n = {n[0]}-{n[-1]}"


@renderer
def error_vs_size(block: FigureBlock, folder: Path) -> list[Path]:
    """Pham Figs. 1-2: test error against the size of the real training subset. Rows whose cells are in the size
    columns ("10K" .. "50K": same #epochs, same #optimisation steps) are curves; a row with its cell in another
    column (a classifier trained on N GANs' images) is a horizontal line at its error. (a) ours: mean with its
    95% CI over seeds (bars; a band around a line), (b) the paper's numbers, when the table has them."""
    s = block.summary.assign(x=lambda d: d["col"].map(_size))
    rows = list(dict.fromkeys(s["row"]))
    curves = [r for r in rows if s.loc[s["row"] == r, "x"].notna().all()]
    colors = dict(zip(rows, sns.color_palette("colorblind", len(rows))))
    panels = [(f"(a) ours: mean ± 95% CI over seeds ({_seeds(s)})", "mean", "ci")]
    if s["paper"].notna().any():
        panels.append(("(b) the paper", "paper", None))
    lines = [r for r in rows if r not in curves]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.8), squeeze=False)
    for ax, (title, value, ci) in zip(axes[0], panels):
        for r in rows:
            cells = s[(s["row"] == r) & s[value].notna()].sort_values("x")
            if cells.empty:
                continue
            if r in curves:  # NOTE: each thinner than the last, so that equal values (the 50K cells) show both
                i, err = curves.index(r), cells[ci].fillna(0) if ci else None
                ax.errorbar(cells["x"], cells[value], yerr=err, marker="os^v"[i % 4], ms=9 - 2.5 * i,
                            lw=2.5 - 0.8 * i, capsize=3, color=colors[r], label=r)
            else:  # trained on generated images: no real subset, a line across
                # NOTE: dashes at staggered offsets, so that lines at the same value show each colour in turn
                y, i = cells[value].iloc[0], lines.index(r)
                dashes = (3 * i, (3, 3 * (len(lines) - 1))) if len(lines) > 1 else "--"
                ax.axhline(y, color=colors[r], lw=1.8, ls=dashes)
                # (the legend shows a plain dashed line: the staggered one's sample can fall in its gap)
                ax.plot([], [], color=colors[r], lw=1.8, ls="--", label=r)
                if ci and not math.isnan(cells[ci].iloc[0]):
                    ax.axhspan(y - cells[ci].iloc[0], y + cells[ci].iloc[0], color=colors[r], alpha=0.15, lw=0)
        if not ax.has_data():
            ax.text(0.5, 0.5, "no value", transform=ax.transAxes, ha="center", color="grey")
        sizes = sorted(s["x"].dropna().unique())
        ax.set_xticks(sizes, [f"{x:g}K" for x in sizes])
        ax.set(title=title, xlabel="real training images (the paper's subset sizes)",
               ylabel=M.LABELS.get(block.table.metric, block.table.metric))
        ax.legend(fontsize=7, loc="best", framealpha=0.8)
    return [_save(fig, folder / f"{block.stem}.png", block)]


@renderer
def error_vs_threshold(block: FigureBlock, folder: Path) -> list[Path]:
    """Pham Fig. 5: (a) test error against the filter's threshold (the columns), mean with its 95% CI over seeds
    (the paper's number as a hollow diamond where it has one); (b) what the filter rejected at each threshold:
    the share of all generated draws rejected for a wrong label and for a low probability, mean over seeds."""
    s = block.summary.assign(x=lambda d: d["col"].astype(float))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    ax = axes[0]
    for r, cells in s.groupby("row", sort=False):
        cells = cells.sort_values("x")
        ours = cells[cells["n"] > 0]
        ax.errorbar(ours["x"], ours["mean"], yerr=ours["ci"].fillna(0), marker="o", capsize=3, label=f"{r}: ours")
        if cells["paper"].notna().any():
            ax.plot(cells["x"], cells["paper"], "D", mfc="none", mec="black", ms=8, label=f"{r}: the paper")
    ax.set(title=f"(a) test error: mean ± 95% CI over seeds ({_seeds(s)})", xlabel="filter threshold on p[label]",
           ylabel=M.LABELS.get(block.table.metric, block.table.metric))
    ax.legend(fontsize=7)
    rejected = [VERDICTS["wrong_label"], VERDICTS["low_prob"]]
    shares = [{"threshold": float(t["col"]), "reason": label, "share": 100 * float(np.sum(t[col])) / t[GENERATED]}
              for t in block.rows.to_dict("records") if t.get(GENERATED) for col, label, _ in rejected]
    if shares:
        sns.lineplot(pd.DataFrame(shares), x="threshold", y="share", hue="reason", marker="o", errorbar=None,
                     palette={label: color for _, label, color in rejected}, ax=axes[1])
        axes[1].legend(fontsize=7, title=None)
    axes[1].set(title="(b) generated draws the filter rejected (mean over seeds)", ylabel="share of the draws (%)",
                xlabel="filter threshold on p[label]", ylim=(0, 100))
    return [_save(fig, folder / f"{block.stem}.png", block)]


@renderer
def filter_counts(block: FigureBlock, folder: Path) -> list[Path]:
    """Pham Figs. 6-7: per class, the generated images the filter accepted, rejected for a wrong label and
    rejected for a low probability over the whole run (mean over seeds), stacked; one panel per cell."""
    if any(col not in block.rows or block.rows[col].isna().any() for col, _, _ in VERDICTS.values()):
        raise NoFigureData(f"No per-class filter counts in the results of {block.table.name} ({block.heading}).")
    cells = block.ran_cells
    k = max(len(v) for v in block.rows[VERDICTS["accepted"][0]])
    fig, axes = plt.subplots(len(cells), 1, figsize=(max(10.0, 4 + 0.13 * k), 3.8 * len(cells)), squeeze=False)
    for ax, cell in zip(axes[:, 0], cells):
        trials = block.rows[block.rows["cell"] == cell.name]
        bottom = np.zeros(k)
        for col, label, color in VERDICTS.values():
            mean = np.mean([np.asarray(v, dtype=float) for v in trials[col]], axis=0)
            ax.bar(np.arange(k), mean, bottom=bottom, width=0.8, color=color, label=label)
            bottom += mean
        forced = np.mean([np.sum(v) for v in trials[FILTER_FORCED]]) if FILTER_FORCED in trials else 0
        ax.set(xlabel="class (index in the dataset)", xlim=(-0.6, k - 0.4), ylabel="generated images (run total)")
        ax.set_title(f"{cell.row}, mean over {len(trials)} seed(s); {forced:.0f} slots were filled with a rejected "
                     "draw after max_draws (filter_forced)", fontsize=9)
        ax.set_xticks(range(0, k, 1 if k <= 20 else 10))
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return [_save(fig, folder / f"{block.stem}.png", block)]


def _framed(ax, images: torch.Tensor, verdicts: torch.Tensor, codes: dict, k: int, blank_rejected: bool) -> None:
    """The grid of ``images`` (one column per class, ``k`` columns), each rejected image framed in its verdict's
    colour, or left blank (``blank_rejected``)."""
    rejected = verdicts != codes["accepted"]
    if blank_rejected:
        images = images.clone()
        images[rejected] = 235  # light grey: the slot the filter emptied
    ax.imshow(_grid(images, k))
    h, w = images.shape[2:]
    names = {code: name for name, code in codes.items()}
    for i in [] if blank_rejected else torch.nonzero(rejected).flatten().tolist():  # image i: row i // k, column i % k
        ax.add_patch(plt.Rectangle(((i % k) * (w + 1) + 0.5, (i // k) * (h + 1) + 0.5), w, h, fill=False,
                                   edgecolor=VERDICTS[names[int(verdicts[i])]][2], lw=2))
    ax.set_xticks([c * (w + 1) + 1 + w / 2 for c in range(k)], range(k), fontsize=7)
    ax.set(yticks=[], xlabel="class")


@renderer
def filter_grids(block: FigureBlock, folder: Path) -> list[Path]:
    """Pham Figs. 3-4: the same generated images (the same latents and labels; one column per class) before the
    filter, each rejected one framed by its reason, and after it: the accepted ones, rejected slots left blank."""
    d = block.data()
    images, verdicts, codes = d["grid"], d["grid_verdicts"], d["verdict_codes"]
    k = int(d["grid_labels"].max()) + 1
    kept = int((verdicts == codes["accepted"]).sum())
    fig, axes = plt.subplots(1, 2, figsize=(13, 1.2 + 6.5 * math.ceil(len(images) / k) / k))
    _framed(axes[0], images, verdicts, codes, k, blank_rejected=False)
    _framed(axes[1], images, verdicts, codes, k, blank_rejected=True)
    axes[0].set_title("(a) before filtering: frame = rejected (red: wrong label, orange: probability below the "
                      "threshold)", fontsize=9)
    axes[1].set_title(f"(b) after filtering: the {kept} of {len(verdicts)} accepted", fontsize=9)
    if not kept:  # an empty grid is the data (e.g. a filter at chance), not a failure to draw: say so
        axes[1].text(0.5, 0.5, "no image accepted", transform=axes[1].transAxes, ha="center", va="center",
                     fontsize=14, color="dimgrey", bbox={"facecolor": "white", "edgecolor": "none"})
    how = ("trained on filtered draws" if d["filtering"]
           else "trained unfiltered; the filter shown is what it would keep")
    note = (f"Filter: the real-data classifier keeps an image when it predicts its label with p >= {d['threshold']:g} "
            f"({how}); latents truncated at {d['truncation']:g} (0: none); the cell's first GAN, untransformed.")
    return [_save(fig, folder / f"{block.stem}.png", block, note)]


@renderer
def sample_grids(block: FigureBlock, folder: Path) -> list[Path]:
    """Pham Figs. 8-9: samples of each cell's (first) GAN, the same latents and labels in each (one column per
    class), unfiltered: e.g. the concat and the usual add residual block, side by side."""
    cells = block.ran_cells
    data = [block.data(cell) for cell in cells]
    k = int(data[0]["grid_labels"].max()) + 1
    height = 1.2 + 6.5 * math.ceil(len(data[0]["grid"]) / k) / k  # inches: the grids' aspect, 6.5 in wide each
    fig, axes = plt.subplots(1, len(cells), figsize=(6.5 * len(cells), height), squeeze=False)
    for ax, cell, d, letter in zip(axes[0], cells, data, "abcdefgh"):
        ax.imshow(_grid(d["grid"], k))
        ax.set(title=f"({letter}) {cell.row}", xticks=[], yticks=[], xlabel="one column per class (0, 1, ...)")
    return [_save(fig, folder / f"{block.stem}.png", block)]


# ---- Slim 2020: from filtered_sampling / multi_gan's figure data ------------------------------------------

@renderer
def tsne_real_generated(block: FigureBlock, folder: Path) -> list[Path]:
    """Slim Fig. 1: real test images and generated ones of the same classes in the real-data classifier's feature
    space, one t-SNE for both: (a) coloured by source, a marker per class; (b) real only and (c) generated only,
    coloured by class (Slim's left and right panels), in the same embedding."""
    d = block.data()
    f, lab = d["features"], d["labels"]
    real, gen = _tsne([f["real"], f["generated"]])
    classes = sorted(set(lab["real"].tolist()) | set(lab["generated"].tolist()))
    markers = dict(zip(classes, "osD^vP*Xph"))
    palette = dict(zip(classes, sns.color_palette("tab10", len(classes))))
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.2), sharex=True, sharey=True)
    for emb, y, color in ((real, lab["real"], "tab:blue"), (gen, lab["generated"], "tab:orange")):
        for c in classes:
            at = (y == c).numpy()
            axes[0].scatter(emb[at, 0], emb[at, 1], marker=markers[c], color=color, s=14, alpha=0.6)
    for ax, emb, y, title in ((axes[1], real, lab["real"], "(b) real test images"),
                              (axes[2], gen, lab["generated"], "(c) generated images, unfiltered")):
        for c in classes:
            at = (y == c).numpy()
            ax.scatter(emb[at, 0], emb[at, 1], marker=markers[c], color=palette[c], s=14, alpha=0.8)
        ax.set_title(title, fontsize=9)
    sources = [plt.Line2D([], [], marker="o", ls="none", color=c, label=s)
               for c, s in (("tab:blue", "real"), ("tab:orange", "generated"))]
    shapes = [plt.Line2D([], [], marker=markers[c], ls="none", color="dimgrey", label=f"class {c}") for c in classes]
    below = {"fontsize": 7, "loc": "upper center", "bbox_to_anchor": (0.5, -0.02), "ncol": 6, "frameon": False}
    axes[0].legend(handles=sources + shapes, **below)
    axes[0].set_title(f"(a) real ({len(real)}) and generated ({len(gen)}) images, one t-SNE", fontsize=9)
    axes[2].legend(handles=[plt.Line2D([], [], marker=markers[c], ls="none", color=palette[c], label=f"class {c}")
                            for c in classes], **below)
    for ax in axes:
        ax.set(xticks=[], yticks=[])
    note = ("Features: the real-data classifier's (the filter); real: test images; generated: the cell's first GAN, "
            "as many per class, unfiltered and untransformed.")
    return [_save(fig, folder / f"{block.stem}.png", block, note)]


WEIGHTINGS = {"A_mu": "method A, tau = mu (weights below the class mean set to 0)",
              "A_sigma": "method A, tau = mu + sigma (weights below mean + std set to 0)",
              "B": "method B (sigmoid)", "C": "method C (identity)"}


@renderer
def tsne_weights(block: FigureBlock, folder: Path) -> list[Path]:
    """Slim Fig. 2: the real training images of one class, t-SNE of their features, coloured by the sample weight
    each got for the second GAN of a conditioned chain: (a) the cell's method (Slim: with thresholding, A with
    tau = mu), (b) the normalised weights before any transform (method C: "without thresholding"). Grey crosses:
    the first GAN's images of the class, the ones the weights measure distances to."""
    w = block.data().get("weights")
    if w is None:
        raise NoFigureData(f"{block.table.cells[0].name}: the figure data has no sample weights (not a conditioned "
                           "chain?).")
    real, gen = _tsne([w["real"], w["generated"]])
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.6), sharex=True, sharey=True, layout="constrained")
    for ax, key, title in ((axes[0], "weights", f"(a) {WEIGHTINGS.get(w['method'], w['method'])}"),
                           (axes[1], "normalised", "(b) normalised distances, no transform (method C)")):
        ax.scatter(gen[:, 0], gen[:, 1], marker="x", color="grey", s=12, alpha=0.5, label="first GAN's images")
        points = ax.scatter(real[:, 0], real[:, 1], c=w[key].numpy(), cmap="viridis", vmin=0, vmax=1, s=16,
                            label="real images, coloured by weight")
        ax.set(title=title, xticks=[], yticks=[])
    axes[0].legend(fontsize=7, loc="best", framealpha=0.8)
    fig.colorbar(points, ax=list(axes), label="sample weight (the next GAN draws real images in proportion)")
    note = (f"Class {w['class']}: {len(real)} real training images and their weights for the second GAN of the chain "
            "(computed against the first GAN's images); features: the real-data classifier's.")
    return [_save(fig, folder / f"{block.stem}.png", block, note)]


# ---- Addepalli 2020 (DeGAN): from degan's figure data -----------------------------------------------------

@renderer
def degan_samples(block: FigureBlock, folder: Path) -> list[Path]:
    """Each generator row's samples (an 8x8 grid from a stream of its own) over the teacher's predicted-class
    histogram of its samples after the generator's last epoch: what DeGAN's diversity loss is meant to flatten
    (DCGAN, without it, beside). Not a figure of the paper, which shows none of its samples for Fashion-MNIST."""
    cells = block.ran_cells
    data = [block.data(cell) for cell in cells]
    fig, axes = plt.subplots(2, len(cells), figsize=(4.2 * len(cells), 8.4), squeeze=False,
                             gridspec_kw={"height_ratios": [4, 2.4]})
    for (top, bottom), cell, d in zip(axes.T, cells, data):
        top.imshow(_grid(d["grid"], 8), cmap="gray" if d["grid"].shape[1] == 1 else None)
        top.set(title=textwrap.fill(cell.row, 34), xticks=[], yticks=[])
        last = d["gan_history"][-1]
        counts = np.asarray(last[M.KD_SOURCE_HISTOGRAM], dtype=float)
        bottom.bar(range(len(counts)), 100 * counts / max(counts.sum(), 1), color="tab:blue")
        bottom.axhline(100 / len(counts), color="grey", ls="--", lw=1)
        bottom.set(xticks=range(len(counts)), xlabel="the teacher's predicted class", ylim=(0, 100),
                   title=f"epoch {last['epoch']}: balance {last[M.KD_SOURCE_BALANCE]:.1f}%", ylabel="% of samples")
    proxy = block.rows[M.PROXY_LABEL].iloc[0] if M.PROXY_LABEL in block.rows else data[0]["proxy"]["source"]
    note = (f"Proxy: {proxy}. Balance: 100 x the entropy of the histogram / log K (100 = "
            "uniform, the dashed line); the samples the teacher labels are the generator's after its last epoch.")
    return [_save(fig, folder / f"{block.stem}.png", block, note)]
