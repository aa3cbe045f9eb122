"""Paper tables from the tidy results DataFrame: pure functions, nothing edited by hand.

For each table, the trials that finished are grouped by cell, and by dataset, profile and overrides: a
table run on a substituted dataset, at another budget, or with a config changed by hand is shown as
its own block, labelled, never pooled into the paper's cell. Each cell shows our mean ± 95% CI over
seeds with n (reports.stats), the paper's number beside it, and the difference (ours - paper); each
gain row is a paired difference over seeds. A report starts with the verdicts on the paper's claims
that its tables test, and draws each block as a figure (reports.figures) beside its table.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pandas as pd

from harness import metrics as M
from reports import stats
from reports.stats import Estimate
from search_spaces import CLAIMS, PAPERS, SUBSTITUTE, TABLES, Claim, Table

NOT_REPORTED = "n/r"  # a paper cell that is absent or garbled in the extracted text
REPORTED_NOT_RUN = "not run"  # ours, in a row the paper prints from other work (search_spaces.Reported)
FORMATS = ("md", "html", "tex", "csv")

GROUP = ["dataset", "dataset_label", "profile", "overrides"]  # one report block each
# Per seed, for Table 5's collapse note: the collapsed row's collapse epoch and early stopping, the
# non-collapsed row's snapshot epoch. Older results lack some of these columns.
TRACE = (M.COLLAPSE_EPOCH, M.SNAPSHOT_EPOCH, M.SNAPSHOT_RUN_COLLAPSE_EPOCH, M.STOPPED_EARLY, M.DONE_EPOCHS)

# Names for report headers and figure axes, beyond harness.metrics' own.
LABELS = {**M.LABELS,
          M.FID_PRETRAINED_INCEPTION: "FID of the pre-trained GAN, Inception features (lower is better)",
          M.FID_PRETRAINED_CLASSIFIER: "FID of the pre-trained GAN, stage-1 classifier features (lower is better)"}


def metric_of(table: Table, cell) -> str:
    """The metric a cell shows: its own (e.g. a FID beside accuracies), else the table's."""
    return cell.metric or table.metric


# ---- cells ---------------------------------------------------------------------------------------

def summarize(table: Table, results: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, profile, overrides, cell): n, mean, std and 95% CI half-width of the cell's
    metric over seeds, the per-seed values (for paired gains and claims), paper, diff.

    Only trials with status ``ok`` and a finite value count; diverged, incomplete and failed trials are
    counted in their own columns so that the report can say what is missing. A cell and seed run again
    with another identity (a new budget in the profile, changed code) counts once, by its latest run:
    results.parquet keeps the earlier rows (appended in order), but a mean must not pool two configs;
    the superseded rows are counted so that the report says so.
    """
    columns = ["dataset", "dataset_label", "profile", "overrides", "row", "col", "method", "metric", "n", "mean",
               "std", "ci", "paper", "diff", "diverged", "failed", "superseded", "stale_stages", "missing_metrics",
               "values", "trace", "capped"]
    if results.empty or "table" not in results:
        return pd.DataFrame(columns=columns)
    every = _rows_of(table, results)
    mine = every.drop_duplicates(GROUP + ["cell", "seed"], keep="last")
    out = []
    for (dataset, label, profile, extra), group in mine.groupby(GROUP, sort=True):
        for cell in table.cells:
            trials = group[group["cell"] == cell.name]
            same = every[(every["dataset"] == dataset) & (every["profile"] == profile) & (every["overrides"] == extra)
                         & (every["cell"] == cell.name)]
            metric = metric_of(table, cell)
            values = _values(trials, metric)
            est = stats.mean_ci(values.values())
            theirs = math.nan if cell.paper is None else cell.paper
            out.append({"dataset": dataset, "dataset_label": label, "profile": profile, "overrides": extra,
                        "row": cell.row, "col": cell.col, "method": cell.method, "metric": metric, "n": est.n,
                        "mean": est.mean, "std": pd.Series(list(values.values()), dtype=float).std(ddof=1),
                        "ci": est.half, "paper": theirs, "diff": est.mean - theirs,
                        "diverged": int((trials["status"] == "diverged").sum()),
                        "failed": int(trials["status"].isin(["error", "incomplete"]).sum()),
                        # rows of an earlier identity (a changed budget or code) for the same cell and seed
                        "superseded": len(same) - len(trials),
                        "stale_stages": int(trials[M.STAGES_STALE].fillna(0).astype(bool).sum())
                        if M.STAGES_STALE in trials else 0,
                        "missing_metrics": _missing(trials), "values": values, "trace": _trace(trials),
                        "capped": _capped(trials)})
    return pd.DataFrame(out, columns=columns)


def _rows_of(table: Table, results: pd.DataFrame) -> pd.DataFrame:
    """Every results row filed under ``table`` (overrides "{}" where older rows lack them)."""
    every = results[results["table"] == table.name].copy()
    every["overrides"] = every["overrides"].fillna("{}") if "overrides" in every else "{}"
    return every


def _values(trials: pd.DataFrame, metric: str) -> dict[int, float]:
    """seed -> the metric of that seed's ok trial; a missing metric (NaN: no Inception weights) is left out."""
    ok = trials[trials["status"] == "ok"]
    if metric not in ok:
        return {}
    numbers = pd.to_numeric(ok[metric], errors="coerce")
    return {int(s): float(v) for s, v in zip(ok["seed"], numbers) if math.isfinite(v)}


def _capped(trials: pd.DataFrame) -> list[int]:
    """The seeds whose ok trial ran all its epochs with early stopping on: its validation signal was still
    improving within ``patience`` epochs of the cap, so the trial had not converged (a converging budget that
    says so, instead of passing a capped number off as converged)."""
    if M.STOPPED_EARLY not in trials or "config" not in trials:
        return []
    seeds = []
    for r in trials[trials["status"] == "ok"].to_dict("records"):
        cfg = json.loads(r["config"]) if isinstance(r["config"], str) else {}
        # a diverged trial's status is not ok; NaN (an older row without these columns) compares False
        if cfg.get("patience") and r[M.STOPPED_EARLY] == 0 and r.get(M.DONE_EPOCHS, 0) >= cfg.get("epochs", math.inf):
            seeds.append(int(r["seed"]))
    return sorted(seeds)


def _trace(trials: pd.DataFrame) -> dict[int, dict]:
    """seed -> the collapse columns of its ok trial (Table 5), when these trials record a collapse at all."""
    ok = trials[trials["status"] == "ok"]
    present = [c for c in TRACE if c in ok and ok[c].notna().any()]
    if not {M.COLLAPSE_EPOCH, M.SNAPSHOT_EPOCH} & set(present):
        return {}
    return {int(r["seed"]): {c: r[c] for c in present if pd.notna(r[c])} for r in ok.to_dict("records")}


def _missing(trials: pd.DataFrame) -> str | None:
    """Why a metric these trials should have measured is missing (e.g. no Inception weights)."""
    if M.METRIC_MISSING_REASON not in trials:
        return None
    reasons = trials[M.METRIC_MISSING_REASON].dropna()
    return str(reasons.iloc[0]) if len(reasons) else None


def _estimate(s: Mapping) -> Estimate:
    return Estimate(s["mean"], s["ci"], int(s["n"]))


def paired_gains(table: Table, summary: pd.DataFrame) -> pd.DataFrame:
    """One row per (block, gain row, column): the paired difference ``of - over`` over the seeds both
    cells ran (mean, 95% CI half-width, n matched seeds), the paper's printed gain and ours - paper."""
    columns = GROUP + ["row", "col", "n", "mean", "ci", "paper", "diff"]
    out = []
    for key, group in _groups(summary):
        cells = {(r["row"], r["col"]): r for r in group.to_dict("records")}
        for gain in table.gains:
            for col in table.cols:
                of, over = cells.get((gain.of, col)), cells.get((gain.over, col))
                est = stats.paired(of["values"], over["values"]) if of and over else stats.mean_ci([])
                paper = math.nan if gain.paper.get(col) is None else gain.paper[col]
                out.append({**dict(zip(GROUP, key)), "row": gain.row, "col": col, "n": est.n, "mean": est.mean,
                            "ci": est.half, "paper": paper, "diff": est.mean - paper})
    return pd.DataFrame(out, columns=columns)


def _paper(value: float, signed: bool = False) -> str:
    return NOT_REPORTED if math.isnan(value) else f"{value:+.2f}" if signed else f"{value:.2f}"


def _reported(row, col: str, kind: str) -> str:
    """A cell of a row printed from other work (search_spaces.Reported): never ours, no difference."""
    if col not in row.paper:
        return ""
    return {"ours": f"{REPORTED_NOT_RUN} ({row.source})", "paper": _paper(row.paper[col])}.get(kind, "—")


def _delta(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:+.2f}"


def layout(table: Table, summary: pd.DataFrame) -> pd.DataFrame:
    """The paper's layout for one block: its rows and columns, each row followed by the paper's numbers
    and the difference (when the table has paper numbers), then its gain rows (paired over seeds)."""
    has_paper = any(c.paper is not None for c in table.cells) or any(g.paper for g in table.gains) \
        or bool(table.reported)
    kinds = ["ours", "paper", "Δ ours − paper"] if has_paper else ["ours"]

    def show(kind: str, s: Mapping, signed: bool) -> str:
        if kind == "ours":
            return _estimate(s).text(signed)
        return _paper(s["paper"], signed) if kind == "paper" else _delta(s["diff"])

    index, data = [], []
    gains = paired_gains(table, summary)
    for rows, frame, signed in ((table.rows, summary, False), ([g.row for g in table.gains], gains, True)):
        for row in rows:
            cells = frame[frame["row"] == row].set_index("col")
            for kind in kinds:
                index.append((row, kind))
                data.append([show(kind, cells.loc[col], signed) if col in cells.index else "" for col in table.cols])
        if not signed:  # other work's rows, after the table's own: printed, never run
            for r in table.reported:
                for kind in kinds:
                    index.append((r.row, kind))
                    data.append([_reported(r, col, kind) for col in table.cols])
    return pd.DataFrame(data, index=pd.MultiIndex.from_tuples(index, names=["row", "value"]), columns=table.cols)


def _groups(summary: pd.DataFrame):
    """The report's blocks in order: per dataset and profile, the paper's cells before any overridden block."""
    yield from sorted(summary.groupby(GROUP, sort=True), key=lambda kv: (kv[0][:3], kv[0][3] != "{}", kv[0][3]))


# ---- claims ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Comparison:
    """One (better row, worse row, column) of a claim: the paired difference in the claimed direction."""

    better: str
    worse: str
    col: str
    difference: Estimate  # better - worse over matched seeds (worse - better for a lower-is-better metric)


@dataclass(frozen=True)
class ClaimResult:
    """A claim tested at one budget (dataset, profile), or not run (dataset and profile None)."""

    claim: Claim
    verdict: str
    dataset: str | None = None
    dataset_label: str | None = None
    profile: str | None = None
    comparisons: tuple[Comparison, ...] = ()  # those with data
    planned: int = 0  # comparisons the claim makes in the table
    overrides: str = "{}"  # a block of runs with --set fields: tested there too, labelled, never as the paper's cells
    capped: tuple[str, ...] = ()  # compared trials that ran to their epoch cap with early stopping on (row, seed)

    @property
    def label(self) -> str:
        """The verdict as shown: "reproduced" only when every planned comparison ran; when some have no results
        (a column whose data is not here), "reproduced where run", so a claim about every proxy tested on one of
        ten is not read as reproduced. Contradicted needs one counter-example, so it stays as it is."""
        partial = self.verdict == stats.REPRODUCED and self.planned > len(self.comparisons)
        return f"{self.verdict} where run" if partial else self.verdict

    @property
    def seeds(self) -> str:
        ns = sorted({c.difference.n for c in self.comparisons})
        return "" if not ns else f"{ns[0]}" if len(ns) == 1 else f"{ns[0]}–{ns[-1]}"


def claims_of(tables: Iterable[Table]) -> list[Claim]:
    """The registered claims (search_spaces.CLAIMS) that these tables test, in the papers' order."""
    names = {t.name for t in tables}
    return [c for paper in CLAIMS for c in CLAIMS[paper] if c.table in names]


def evaluate_claims(claims: Iterable[Claim], summaries: Mapping[str, pd.DataFrame]) -> list[ClaimResult]:
    """Each claim at each budget its table ran at. A block of overridden runs (``--set``: not the paper's
    cells) is tested too when it holds both sides of a comparison, its budget naming the overrides; the
    paper's cells are always tested first.

    ``summaries`` maps a table name to its ``summarize`` frame.
    """
    out = []
    for claim in claims:
        table = TABLES[claim.table]
        summary = summaries.get(claim.table)
        planned = _planned(claim, table)
        found = []
        if summary is not None and len(summary):
            for (dataset, label, profile, extra), group in _groups(summary):
                cells = {(r["row"], r["col"]): r for r in group.to_dict("records")}
                comparisons, capped = [], []
                for better, worse, col in planned:
                    if (better, col) not in cells or (worse, col) not in cells:
                        continue
                    d = stats.paired(cells[(better, col)]["values"], cells[(worse, col)]["values"])
                    if claim.lower_is_better:
                        d = Estimate(-d.mean, d.half, d.n)
                    if d.n:
                        comparisons.append(Comparison(better, worse, col, d))
                        capped += [f"{row} (seed {seed})" for row in (better, worse)
                                   for seed in cells[(row, col)]["capped"]]
                if extra != "{}" and not comparisons:
                    continue  # an overridden block without both sides of this claim (e.g. one cell's --set run)
                found.append(ClaimResult(claim, stats.verdict(c.difference for c in comparisons), dataset, label,
                                         profile, tuple(comparisons), len(planned), extra,
                                         tuple(dict.fromkeys(capped))))
        out += found or [ClaimResult(claim, stats.NOT_RUN, planned=len(planned))]
    return out


def _planned(claim: Claim, table: Table) -> list[tuple[str, str, str]]:
    """Every (better, worse, column) where the table has both cells, measured on the same metric."""
    cells = {(c.row, c.col): c for c in table.cells}
    return [(b, w, col) for b in claim.better for w in claim.worse for col in (claim.cols or table.cols)
            if (b, col) in cells and (w, col) in cells
            and metric_of(table, cells[(b, col)]) == metric_of(table, cells[(w, col)])]


def _claim_parts(r: ClaimResult) -> tuple[str, str, str, list[str]]:
    """(whose claim, the claim, the budget it was tested at, its comparisons) as plain text."""
    who = "gansweep's control, not the paper's claim" if r.claim.ours else "paper's claim"
    table = TABLES[r.claim.table]
    if r.profile is None:
        budget = f"{table.name}: no finished trials"
    else:
        budget = f"{table.name}: {_heading(table, r.dataset_label, r.dataset, r.profile, r.overrides)}"
        if not r.comparisons:
            budget += "; none of its cells has finished trials on seeds both sides ran"
        else:
            budget += f"; {r.seeds} seed(s)"
            if r.planned > len(r.comparisons):
                budget += f"; {len(r.comparisons)} of {r.planned} comparisons have results"
            if r.capped:
                budget += f"; not converged, ran to the epoch cap: {', '.join(r.capped)}"
    multi = len(r.claim.cols or table.cols) > 1
    comparisons = [f"{c.better} vs {c.worse}{f' ({c.col})' if multi else ''}: {c.difference.text(signed=True)}"
                   for c in r.comparisons]
    return who, r.claim.text + (" (lower is better)" if r.claim.lower_is_better else ""), budget, comparisons


CLAIMS_NOTE = ("Each comparison is a difference in the claimed direction (better − worse; worse − better where "
               "lower is better), paired over seeds (seed s of every method shares its split and stage 1): "
               "mean ± 95% t confidence interval, n matched seeds. Reproduced: every interval lies above 0 "
               "(\"where run\" when some planned comparisons have no results); contradicted: any lies below 0; "
               "inconclusive otherwise (one seed gives no interval).")


def claims_markdown(results: Sequence[ClaimResult], level: int = 2) -> list[str]:
    if not results:
        return []
    lines = [f"{'#' * level} Claims", "", CLAIMS_NOTE, ""]
    for r in results:
        who, claim, budget, comparisons = _claim_parts(r)
        lines.append(f"- **{r.label}** ({who}): {claim}")
        lines.append(f"  - tested at {budget}")
        lines += [f"  - {c}" for c in comparisons]
    return lines + [""]


def claims_html(results: Sequence[ClaimResult], level: int = 2) -> list[str]:
    if not results:
        return []
    rows = []
    for r in results:
        who, claim, budget, comparisons = _claim_parts(r)
        rows.append(f"<tr><td><span class='verdict {r.verdict.replace(' ', '-')}'>{html.escape(r.label)}</span></td>"
                    f"<td class='text'>{html.escape(claim)}<br><small>{html.escape(who)}</small></td>"
                    f"<td class='text'>{html.escape(budget)}</td>"
                    f"<td class='text nowrap'>{'<br>'.join(html.escape(c) for c in comparisons) or '—'}</td></tr>")
    return [f"<h{level}>Claims</h{level}>", f"<p class='note'>{html.escape(CLAIMS_NOTE)}</p>",
            "<table class='gansweep claims'><thead><tr><th class='text'>verdict</th><th class='text'>claim</th>"
            "<th class='text'>tested at</th><th class='text'>comparisons: mean ± 95% CI (n seeds)</th></tr></thead>"
            "<tbody>" + "".join(rows) + "</tbody></table>"]


def claims_latex(results: Sequence[ClaimResult]) -> list[str]:
    if not results:
        return []
    items = []
    for r in results:
        who, claim, budget, comparisons = _claim_parts(r)
        sub = "".join(f"\\item {_tex(c)}\n" for c in comparisons)
        items.append(f"\\item \\textbf{{{r.label}}} ({_tex(who)}): {_tex(claim)}. Tested at {_tex(budget)}.\n"
                     + (f"\\begin{{itemize}}\n{sub}\\end{{itemize}}\n" if sub else ""))
    return [f"\\paragraph{{Claims}} {_tex(CLAIMS_NOTE)}\n\\begin{{itemize}}\n{''.join(items)}\\end{{itemize}}\n"]


# ---- Table 5: when the collapsed row collapsed, which snapshot the other row used ---------------------

def collapse_notes(table: Table, group: pd.DataFrame) -> list[str]:
    """For a table with a collapsed (fake_source "generator") and a non-collapsed ("one_per_class") row:
    in how many seeds and at which epoch the collapsed row's generator collapsed, and which pre-collapse
    snapshot epoch the non-collapsed row sampled; both read per seed from the results' columns."""
    by_source = {c.settings.get("fake_source"): c for c in table.cells}
    collapsed, kept = by_source.get("generator"), by_source.get("one_per_class")
    if not (collapsed and kept):
        return []
    cells = {(r["row"], r["col"]): r for r in group.to_dict("records")}
    notes = []
    trace = cells[(collapsed.row, collapsed.col)]["trace"] if (collapsed.row, collapsed.col) in cells else {}
    epochs = _per_seed(trace, M.COLLAPSE_EPOCH)
    if epochs is None:
        notes.append(f"{collapsed.row}: no collapse epoch recorded in these results.")
    else:
        k = sum(e is not None and e >= 0 for e in epochs)
        note = f"{collapsed.row}: collapsed in {k} of {len(epochs)} seeds (epochs {_epochs(epochs)})"
        done, early = _per_seed(trace, M.DONE_EPOCHS), _per_seed(trace, M.STOPPED_EARLY)
        if done is not None:
            note += f"; epochs run {_epochs(done)}"
        if early is not None:
            note += f"; early stopping ended {sum(bool(e) for e in early if e is not None)} of {len(early)}"
        notes.append(note + ".")
    trace = cells[(kept.row, kept.col)]["trace"] if (kept.row, kept.col) in cells else {}
    snaps = _per_seed(trace, M.SNAPSHOT_EPOCH)
    if snaps is None:
        notes.append(f"{kept.row}: the generator snapshot's epoch is not recorded in these results "
                     f"(rows from before {M.SNAPSHOT_EPOCH} existed).")
    else:
        note = (f"{kept.row}: sampled the pre-collapse generator snapshot of epoch {_epochs(snaps)} "
                f"(seeds {', '.join(str(s) for s in sorted(trace))}")
        runs = _per_seed(trace, M.SNAPSHOT_RUN_COLLAPSE_EPOCH)
        if runs is not None:
            note += f"; that run collapsed at epoch {_epochs(runs)}"
        notes.append(note + ").")
    return notes


def _per_seed(trace: Mapping[int, Mapping], column: str) -> list | None:
    """The column's value per seed (None where a seed lacks it); None when no seed has it."""
    values = [trace[s].get(column) for s in sorted(trace)]
    return None if all(v is None for v in values) else values


def _epochs(values: list) -> str:
    """``12, 15, -``: an epoch per seed, ``-`` for none (-1) or not recorded."""
    return ", ".join("-" if v is None or v < 0 else str(int(v)) for v in values)


# ---- text ------------------------------------------------------------------------------------------

def _heading(table: Table, label: str, dataset: str, profile: str, extra: str = "{}") -> str:
    """The block's budget: dataset, profile, what the profile substitutes (Table.substitution) or what
    --dataset substituted, and any hand-made override."""
    text = f"dataset {label}; profile {profile}"
    sub = table.substitution(profile)
    if sub:
        text += f" — substituted: {sub}"
    profile_dataset = table.profiles.get(profile, {}).get(SUBSTITUTE, {}).get("dataset")
    if dataset != table.dataset and dataset != profile_dataset:
        text += f" — substituted for the paper's {table.dataset}"
    changed = json.loads(extra or "{}")
    if changed:
        text += "; overridden, not the paper's cells: " + ", ".join(f"{k}={v}" for k, v in sorted(changed.items()))
    return text


def _footnotes(table: Table, group: pd.DataFrame) -> list[str]:
    # Each metric with where it is shown: whole columns by their name (Pham's Size / IS / FID / Error), else cells
    by_col = {col: {metric_of(table, c) for c in table.cells if c.col == col} for col in table.cols}
    metrics = {}
    for cell in table.cells:
        where = cell.col if len(by_col[cell.col]) == 1 else cell.name
        names = metrics.setdefault(metric_of(table, cell), [])
        if where not in names:
            names.append(where)
    how = ("ours = mean ± 95% confidence interval (Student t) over seeds, n seeds (no CI for one seed); "
           "gains are paired differences over matched seeds")
    if len(metrics) == 1:
        notes = [f"Metric: {LABELS.get(table.metric, table.metric)}; {how}."]
    else:
        notes = ["Metrics: " + "; ".join(f"{', '.join(cells)}: {LABELS.get(m, m)}" for m, cells in metrics.items())
                 + f"; {how}."]
    if table.notes:
        notes.append(table.notes)
    notes += collapse_notes(table, group)
    if int(group["diverged"].sum()):
        notes.append(f"{int(group['diverged'].sum())} trial(s) diverged and are not counted.")
    if int(group["failed"].sum()):
        notes.append(f"{int(group['failed'].sum())} trial(s) failed or did not finish and are not counted.")
    if int(group["superseded"].sum()):
        notes.append(f"{int(group['superseded'].sum())} earlier run(s) of these cells and seeds with another "
                     "identity (config, data or code) are superseded by the latest run and not counted.")
    capped = {}  # row -> seeds (a row's columns are the same trials)
    for r in group.to_dict("records"):
        capped.setdefault(r["row"], set()).update(r["capped"] or ())
    capped = {row: seeds for row, seeds in capped.items() if seeds}
    if capped:
        notes.append("Not converged: trials that ran to their epoch cap with early stopping on (their validation "
                     "accuracy was still improving within the patience), their numbers those at the cap: "
                     + "; ".join(f"{row} (seed {', '.join(map(str, sorted(seeds)))})" for row, seeds in capped.items())
                     + ".")
    if int(group["stale_stages"].sum()):
        notes.append(f"{int(group['stale_stages'].sum())} trial(s) reused cached stages computed by other code "
                     "(--reuse-stale-stages).")
    reasons = group["missing_metrics"].dropna()
    if len(reasons):
        notes.append(f"Inception FID / IS / KID are missing: {reasons.iloc[0]}.")
    return notes


@dataclass(frozen=True)
class Image:
    """A PNG as a report links it: its path relative to the report, its width in pixels."""

    src: str
    width: int

    @classmethod
    def of(cls, path: Path, base: Path) -> Image:
        from PIL import Image as PIL

        with PIL.open(path) as im:
            return cls(Path(os.path.relpath(path, base)).as_posix(), im.width)


def to_markdown(table: Table, summary: pd.DataFrame, claims: Sequence[ClaimResult] = (),
                images: Mapping[tuple, Image] | None = None, level: int = 1) -> str:
    """The table's Markdown: the claims it tests, then one block per (dataset, profile, overrides), each
    with its figure (``images``: block key -> image path relative to the report) under it."""
    h = "#" * level
    parts = [f"{h} {table.name}: {table.title}", ""] + claims_markdown(claims, level + 1)
    if summary.empty:
        return "\n".join(parts + ["No finished trials of this table in the results."]) + "\n"
    for key, group in _groups(summary):
        dataset, label, profile, extra = key
        grid = layout(table, group).reset_index()
        parts += [f"{h}# {_heading(table, label, dataset, profile, extra)}", "", grid.to_markdown(index=False), ""]
        if images and key in images:
            parts += [f"![{table.name}: ours vs the paper]({images[key].src})", ""]
        parts += [f"- {n}" for n in _footnotes(table, group)] + [""]
    return "\n".join(parts)


STYLE = ("body{font-family:sans-serif;margin:2em;max-width:1500px} table{border-collapse:collapse} "
         "td,th{padding:4px 10px;border-bottom:1px solid #ccc;text-align:right;vertical-align:top} "
         "td.text,th.text{text-align:left} td.nowrap{white-space:nowrap} "
         # the figure beside its table when the page is wide enough, under it otherwise
         ".block{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start} "
         ".block img{flex:1 1 auto;min-width:0} .note{color:#444;max-width:60em} "
         ".verdict{padding:2px 6px;border-radius:3px;color:#fff;white-space:nowrap} "
         ".reproduced{background:#2e7d32} .contradicted{background:#c62828} .inconclusive{background:#b26a00} "
         ".not-run{background:#757575} table.claims td{font-size:0.92em}")


def _html_section(table: Table, summary: pd.DataFrame, claims: Sequence[ClaimResult] = (),
                  images: Mapping[tuple, Image] | None = None, level: int = 1) -> list[str]:
    body = [f"<h{level}>{html.escape(table.name)}: {html.escape(table.title)}</h{level}>"]
    body += claims_html(claims, level + 1)
    for key, group in _groups(summary):
        dataset, label, profile, extra = key
        body.append(f"<h{level + 1}>{html.escape(_heading(table, label, dataset, profile, extra))}</h{level + 1}>")
        # NOTE: shrinks to 3/4 of its width before it wraps under the table; never scaled up (blurred)
        figure = (f"<img src='{html.escape(images[key].src)}' alt='{html.escape(table.name)}: ours vs the paper' "
                  f"style='flex-basis:{images[key].width * 3 // 4}px;max-width:{images[key].width}px'>"
                  if images and key in images else "")
        body.append(f"<div class='block'><div>{layout(table, group).to_html(border=0, classes='gansweep')}</div>"
                    f"{figure}</div>")
        body.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in _footnotes(table, group)) + "</ul>")
    if summary.empty:
        body.append("<p>No finished trials of this table in the results.</p>")
    return body


def _page(title: str, body: Sequence[str]) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n")


def to_html(table: Table, summary: pd.DataFrame, claims: Sequence[ClaimResult] = (),
            images: Mapping[tuple, Image] | None = None) -> str:
    return _page(table.name, _html_section(table, summary, claims, images))


def _tex(text: str) -> str:
    """Escape LaTeX's special characters in plain text (one pass, so escapes are not re-escaped)."""
    special = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
               "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    text = re.sub(r"[\\&%$#_{}~^]", lambda m: special[m.group()], text)
    return text.replace("±", r"$\pm$").replace("Δ", r"$\Delta$").replace("−", "--")


def to_latex(table: Table, summary: pd.DataFrame, claims: Sequence[ClaimResult] = ()) -> str:
    """The claims as a list, then booktabs tables (\\toprule, \\midrule, \\bottomrule), one per block."""
    parts = claims_latex(claims)
    for (dataset, label, profile, extra), group in _groups(summary):
        styler = layout(table, group).style.hide(axis="index", names=True)
        styler = styler.format(escape="latex").format_index(escape="latex", axis=0).format_index(
            escape="latex", axis=1)
        caption = _tex(f"{table.title} ({_heading(table, label, dataset, profile, extra)})")
        tex = styler.to_latex(hrules=True, caption=caption, position="ht", position_float="centering")
        parts.append(tex.replace("±", r"$\pm$").replace("Δ", r"$\Delta$").replace("−", "--"))
    return "\n".join(parts) if parts else "% no finished trials\n"


def to_csv(summary: pd.DataFrame) -> str:
    """cells.csv: the summary, its per-seed columns as JSON (seed -> value)."""
    out = summary.copy()
    for c in ("values", "trace", "capped"):
        out[c] = out[c].map(lambda d: json.dumps(d, sort_keys=True, default=float))
    return out.to_csv(index=False)


# ---- figures and files -----------------------------------------------------------------------------

def _block_name(table: Table, key: tuple) -> str:
    """A file-name stem for one block's PNGs: the table, dataset and profile (and a hash of any overrides)."""
    dataset, _, profile, extra = key
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{table.name}_{dataset}_{profile}")
    if extra != "{}":  # overridden blocks of the same dataset and profile get their own file
        name += "_" + hashlib.sha1(extra.encode()).hexdigest()[:8]
    return name


def figures(table: Table, summary: pd.DataFrame, results: pd.DataFrame, artifacts: Path | None,
            folder: Path) -> tuple[list[Path], str]:
    """A figure table's PNGs, per block (dataset, profile, overrides) with finished trials: its renderer
    (reports.figures.RENDERERS[table.figure]) draws from the block's summary, its ok trials' results rows (the
    latest per cell and seed) and their figure data under ``artifacts``. Returns the PNGs and why a block has
    none (its trials saved no figure data)."""
    from reports.figures import RENDERERS, FigureBlock, NoFigureData

    if not table.figure or summary.empty:
        return [], ""
    latest = _rows_of(table, results).drop_duplicates(GROUP + ["cell", "seed"], keep="last")
    done = latest[latest["status"] == "ok"]
    pngs, missing = [], []
    for key, group in _groups(summary):
        rows = done[(done[GROUP] == pd.Series(dict(zip(GROUP, key)))).all(axis=1)]
        if rows.empty:
            continue
        dataset, label, profile, extra = key
        block = FigureBlock(table, _heading(table, label, dataset, profile, extra), _block_name(table, key), group,
                            rows, Path(artifacts) if artifacts else None)
        try:
            pngs += RENDERERS[table.figure](block, folder)
        except NoFigureData as why:
            missing.append(str(why))
    return pngs, " ".join(missing)


def cell_figures(table: Table, summary: pd.DataFrame, folder: Path) -> dict[tuple, Path]:
    """One PNG per block of a (non-figure) table: our means with 95% CIs and the paper's numbers."""
    from reports.figures import cells as draw

    if table.figure or summary.empty:
        return {}
    gains = paired_gains(table, summary)
    out = {}
    for key, group in _groups(summary):
        if not group["n"].any():
            continue
        dataset, label, profile, extra = key
        block_gains = gains[(gains[GROUP] == pd.Series(dict(zip(GROUP, key)))).all(axis=1)]
        out[key] = draw(table, group, block_gains, LABELS, folder / f"{_block_name(table, key)}.png",
                        _heading(table, label, dataset, profile, extra))
    return out


@dataclass
class Part:
    """Everything one table contributes to a report: its summary, claims and images."""

    table: Table
    summary: pd.DataFrame
    claims: list[ClaimResult]
    figures: dict[tuple, Path] = field(default_factory=dict)  # block -> its cell figure
    pngs: list[Path] = field(default_factory=list)  # a figure table's images (reports.figures' renderers)
    missing: str = ""  # why a figure table has none


def build(table: Table, results: pd.DataFrame, folder: Path, artifacts: Path | None = None) -> Part:
    """Summarize ``table`` and write its images into ``folder``."""
    summary = summarize(table, results)
    folder.mkdir(parents=True, exist_ok=True)
    pngs, missing = figures(table, summary, results, artifacts, folder)
    claims = evaluate_claims(claims_of([table]), {table.name: summary})
    return Part(table, summary, claims, cell_figures(table, summary, folder), pngs, missing)


def _documents(parts: Sequence[Part], base: Path, title: str | None = None,
               claims: Sequence[ClaimResult] = ()) -> dict[str, str]:
    """md, html and tex of one report: one table's (title None, its claims first), or a paper's (its
    title, the claims of all its tables first, then each table). Images are linked relative to ``base``."""
    def rel(p: Path) -> str:
        return Path(os.path.relpath(p, base)).as_posix()

    level = 1 if title is None else 2
    md = [f"# {title}", ""] + claims_markdown(claims) if title else []
    page = [f"<h1>{html.escape(title)}</h1>"] + claims_html(claims) if title else []
    tex = claims_latex(claims) if title else []
    for p in parts:
        own = p.claims if title is None else ()
        figs = {k: Image.of(v, base) for k, v in p.figures.items()}
        md.append(to_markdown(p.table, p.summary, own, figs, level)
                  + "".join(f"\n![{x.stem}]({rel(x)})\n" for x in p.pngs) + p.missing)
        page += _html_section(p.table, p.summary, own, figs, level)
        page += [f"<p><img src='{html.escape(rel(x))}' style='max-width:100%'></p>" for x in p.pngs]
        page += [f"<p>{html.escape(p.missing)}</p>"] if p.missing else []
        tex.append(to_latex(p.table, p.summary, own))
    return {"md": "\n".join(md), "html": _page(title or parts[0].table.name, page), "tex": "\n".join(tex)}


def _write(folder: Path, docs: dict[str, str], csv: str, formats) -> list[Path]:
    names = {"md": "report.md", "html": "report.html", "tex": "report.tex", "csv": "cells.csv"}
    written = []
    for fmt in formats:
        path = folder / names[fmt]
        path.write_text(csv if fmt == "csv" else docs[fmt])
        written.append(path)
    return written


def _table_report(table: Table, results: pd.DataFrame, folder: Path, formats,
                  artifacts: Path | None) -> tuple[Part, str, list[Path]]:
    part = build(table, results, folder, artifacts)
    docs = _documents([part], folder)
    written = list(part.figures.values()) + list(part.pngs)
    return part, docs["md"], written + _write(folder, docs, to_csv(part.summary), formats)


def write_report(table: Table, results: pd.DataFrame, folder: Path, formats=FORMATS,
                 artifacts: Path | None = None) -> tuple[str, list[Path]]:
    """Write report.md/.html/.tex and cells.csv and the PNGs (a block's figure; a figure table's images,
    from the trials' figure data under ``artifacts``) into ``folder``; return the Markdown and the paths."""
    _, text, written = _table_report(table, results, folder, formats, artifacts)
    return text, written


def write_paper_report(paper: str, parts: Sequence[Part], folder: Path, formats=FORMATS) -> tuple[str, list[Path]]:
    """One report of a paper's tables (already built): the verdicts on its claims first, then each table,
    its images linked from the tables' own folders. cells.csv holds every table's cells."""
    folder.mkdir(parents=True, exist_ok=True)
    claims = evaluate_claims(claims_of(p.table for p in parts), {p.table.name: p.summary for p in parts})
    docs = _documents(parts, folder, f"{paper}: {PAPERS.get(paper, paper)}", claims)
    frames = [p.summary.assign(table=p.table.name)[["table", *p.summary.columns]] for p in parts if not p.summary.empty]
    csv = to_csv(pd.concat(frames, ignore_index=True)) if frames else ""
    return docs["md"], _write(folder, docs, csv, formats)


def write_reports(tables: Sequence[Table], results: pd.DataFrame, root: Path, formats=FORMATS,
                  artifacts: Path | None = None) -> list[tuple[str, list[Path]]]:
    """Every table's report in ``root/<table>``; for each paper with two or more of its tables among them
    (``gansweep reproduce``, ``report`` of some of its tables, or ``report`` of everything in an --out),
    also the paper's report in ``root/<paper>``. Returns (Markdown, paths) to print: a paper's report
    stands for its tables (it holds every one of them); a table of no such paper prints its own."""
    papers: dict[str, list] = {}  # paper -> [(part, text, written)] of its tables, in the order given
    for table in tables:
        papers.setdefault(table.paper, []).append(
            _table_report(table, results, root / table.name, formats, artifacts))
    printed = []
    for paper, members in papers.items():
        if len(members) > 1:
            text, written = write_paper_report(paper, [part for part, _, _ in members], root / paper, formats)
            printed.append((text, [path for _, _, w in members for path in w] + written))
        else:
            printed += [(text, written) for _, text, written in members]
    return printed
