"""Paper tables from the tidy results DataFrame: pure functions, nothing edited by hand.

For each table, the trials that finished are grouped by cell, and by dataset, profile and overrides: a
table run on a substituted dataset, at another budget, or with a config changed by hand is shown as
its own block, labelled, never pooled into the paper's cell. Each cell shows our mean ± std over
seeds with n, the paper's number beside it, and the difference (ours - paper).
"""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path

import pandas as pd
import torch

from harness import metrics as M
from search_spaces import Table

NOT_REPORTED = "n/r"  # a paper cell that is absent or garbled in the extracted text
FORMATS = ("md", "html", "tex", "csv")


GROUP = ["dataset", "dataset_label", "profile", "overrides"]  # one report block each


def summarize(table: Table, results: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, profile, overrides, cell): n, mean, std of the table's metric, paper, diff.

    Only trials with status ``ok`` count; diverged, incomplete and failed trials are counted in
    their own columns so that the report can say what is missing. A cell and seed run again with
    another identity (a new budget in the profile, changed code) counts once, by its latest run:
    results.parquet keeps the earlier rows (appended in order), but a mean must not pool two configs;
    the superseded rows are counted so that the report says so.
    """
    columns = ["dataset", "dataset_label", "profile", "overrides", "row", "col", "method", "n", "mean", "std",
               "paper", "diff", "diverged", "failed", "superseded", "stale_stages", "missing_metrics"]
    if results.empty or "table" not in results:
        return pd.DataFrame(columns=columns)
    mine = results[results["table"] == table.name].copy()
    mine["overrides"] = mine["overrides"].fillna("{}") if "overrides" in mine else "{}"
    every = mine
    mine = mine.drop_duplicates(GROUP + ["cell", "seed"], keep="last")
    paper = {c.name: c.paper for c in table.cells}
    out = []
    for (dataset, label, profile, extra), group in mine.groupby(GROUP, sort=True):
        for cell in table.cells:
            trials = group[group["cell"] == cell.name]
            same = every[(every["dataset"] == dataset) & (every["profile"] == profile) & (every["overrides"] == extra)
                         & (every["cell"] == cell.name)]
            ok = trials[trials["status"] == "ok"][table.metric].astype(float)
            mean = ok.mean() if len(ok) else math.nan
            std = ok.std(ddof=1) if len(ok) > 1 else math.nan
            theirs = paper[cell.name]
            diff = mean - theirs if theirs is not None and len(ok) else math.nan
            out.append({"dataset": dataset, "dataset_label": label, "profile": profile, "overrides": extra,
                        "row": cell.row, "col": cell.col, "method": cell.method, "n": len(ok), "mean": mean,
                        "std": std, "paper": theirs if theirs is not None else math.nan, "diff": diff,
                        "diverged": int((trials["status"] == "diverged").sum()),
                        "failed": int(trials["status"].isin(["error", "incomplete"]).sum()),
                        # rows of an earlier identity (a changed budget or code) for the same cell and seed
                        "superseded": len(same) - len(trials),
                        "stale_stages": int(trials[M.STAGES_STALE].fillna(0).astype(bool).sum())
                        if M.STAGES_STALE in trials else 0,
                        "missing_metrics": _missing(trials)})
    return pd.DataFrame(out, columns=columns)


def _missing(trials: pd.DataFrame) -> str | None:
    """Why a metric these trials should have measured is missing (e.g. no Inception weights)."""
    if M.METRIC_MISSING_REASON not in trials:
        return None
    reasons = trials[M.METRIC_MISSING_REASON].dropna()
    return str(reasons.iloc[0]) if len(reasons) else None


def _ours(s: pd.Series) -> str:
    if s["n"] == 0:
        return "—"
    std = "" if math.isnan(s["std"]) else f" ± {s['std']:.2f}"
    return f"{s['mean']:.2f}{std} (n={s['n']})"


def _paper(s: pd.Series) -> str:
    return NOT_REPORTED if math.isnan(s["paper"]) else f"{s['paper']:.2f}"


def _diff(s: pd.Series) -> str:
    return "—" if math.isnan(s["diff"]) else f"{s['diff']:+.2f}"


def layout(table: Table, summary: pd.DataFrame) -> pd.DataFrame:
    """The paper's layout for one (dataset, profile) group: its rows and columns, each paper row
    followed by the paper's numbers and the difference (when the table has paper numbers)."""
    has_paper = any(c.paper is not None for c in table.cells)
    kinds = [("ours", _ours), ("paper", _paper), ("Δ ours − paper", _diff)] if has_paper else [("ours", _ours)]
    index, data = [], []
    for row in table.rows:
        cells = summary[summary["row"] == row].set_index("col")
        for kind, fmt in kinds:
            index.append((row, kind))
            data.append([fmt(cells.loc[col]) if col in cells.index else "" for col in table.cols])
    means = {(r["row"], r["col"]): r["mean"] for r in summary.to_dict("records")}
    for gain in table.gains:
        ours = {col: means.get((gain.of, col), math.nan) - means.get((gain.over, col), math.nan) for col in table.cols}
        paper = {col: math.nan if gain.paper.get(col) is None else gain.paper[col] for col in table.cols}
        values = {"ours": ours, "paper": paper, "Δ ours − paper": {c: ours[c] - paper[c] for c in table.cols}}
        for kind, _ in kinds:
            index.append((gain.row, kind))
            missing = NOT_REPORTED if kind == "paper" else "—"
            data.append([missing if math.isnan(values[kind][c]) else f"{values[kind][c]:+.2f}" for c in table.cols])
    return pd.DataFrame(data, index=pd.MultiIndex.from_tuples(index, names=["row", "value"]), columns=table.cols)


def _groups(summary: pd.DataFrame):
    for (dataset, label, profile, extra), group in summary.groupby(GROUP, sort=True):
        yield dataset, label, profile, extra, group


def _heading(table: Table, label: str, dataset: str, profile: str, extra: str = "{}") -> str:
    substituted = "" if dataset == table.dataset else f" — substituted for the paper's {table.dataset}"
    changed = json.loads(extra or "{}")
    override = ("; overridden, not the paper's cells: " + ", ".join(f"{k}={v}" for k, v in sorted(changed.items()))
                if changed else "")
    return f"dataset {label}{substituted}; profile {profile}{override}"


def _footnotes(table: Table, group: pd.DataFrame) -> list[str]:
    notes = [f"Metric: {M.LABELS.get(table.metric, table.metric)}; ours = mean ± sample std over seeds."]
    if table.notes:
        notes.append(table.notes)
    if int(group["diverged"].sum()):
        notes.append(f"{int(group['diverged'].sum())} trial(s) diverged and are not counted.")
    if int(group["failed"].sum()):
        notes.append(f"{int(group['failed'].sum())} trial(s) failed or did not finish and are not counted.")
    if int(group["superseded"].sum()):
        notes.append(f"{int(group['superseded'].sum())} earlier run(s) of these cells and seeds with another "
                     "identity (config, data or code) are superseded by the latest run and not counted.")
    if int(group["stale_stages"].sum()):
        notes.append(f"{int(group['stale_stages'].sum())} trial(s) reused cached stages computed by other code "
                     "(--reuse-stale-stages).")
    reasons = group["missing_metrics"].dropna()
    if len(reasons):
        notes.append(f"Inception FID / IS / KID are missing: {reasons.iloc[0]}.")
    return notes


def to_markdown(table: Table, summary: pd.DataFrame) -> str:
    parts = [f"# {table.name}: {table.title}", ""]
    if summary.empty:
        return "\n".join(parts + ["No finished trials of this table in the results."]) + "\n"
    for dataset, label, profile, extra, group in _groups(summary):
        grid = layout(table, group).reset_index()
        parts += [f"## {_heading(table, label, dataset, profile, extra)}", "", grid.to_markdown(index=False), ""]
        parts += [f"- {n}" for n in _footnotes(table, group)] + [""]
    return "\n".join(parts)


def to_html(table: Table, summary: pd.DataFrame) -> str:
    body = [f"<h1>{html.escape(table.name)}: {html.escape(table.title)}</h1>"]
    for dataset, label, profile, extra, group in _groups(summary):
        body.append(f"<h2>{html.escape(_heading(table, label, dataset, profile, extra))}</h2>")
        body.append(layout(table, group).to_html(border=0, classes="gansweep"))
        body.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in _footnotes(table, group)) + "</ul>")
    if summary.empty:
        body.append("<p>No finished trials of this table in the results.</p>")
    style = ("body{font-family:sans-serif;margin:2em} table{border-collapse:collapse} "
             "td,th{padding:4px 10px;border-bottom:1px solid #ccc;text-align:right}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(table.name)}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")


def _tex_escape(text: str) -> str:
    """Escape LaTeX's special characters in plain text (one pass, so escapes are not re-escaped)."""
    special = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
               "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    return re.sub(r"[\\&%$#_{}~^]", lambda m: special[m.group()], text)


def to_latex(table: Table, summary: pd.DataFrame) -> str:
    """booktabs tables (\\toprule, \\midrule, \\bottomrule), one per (dataset, profile)."""
    parts = []
    for dataset, label, profile, extra, group in _groups(summary):
        styler = layout(table, group).style.hide(axis="index", names=True)
        styler = styler.format(escape="latex").format_index(escape="latex", axis=0).format_index(
            escape="latex", axis=1)
        caption = _tex_escape(f"{table.title} ({_heading(table, label, dataset, profile, extra)})")
        tex = styler.to_latex(hrules=True, caption=caption, position="ht", position_float="centering")
        parts.append(tex.replace("±", r"$\pm$").replace("Δ", r"$\Delta$").replace("−", "--"))
    return "\n".join(parts) if parts else "% no finished trials\n"


def figures(table: Table, results: pd.DataFrame, artifacts: Path, folder: Path) -> tuple[list[Path], str]:
    """Render a figure table's PNGs from the figure data of its first finished trial."""
    from reports.figures import RENDERERS

    if not table.figure:
        return [], ""
    done = results[(results["table"] == table.name) & (results["status"] == "ok")] if not results.empty else results
    for identity in done.sort_values("seed")["identity"] if len(done) else []:
        data = Path(artifacts) / identity / "distillation.pt"
        if data.is_file():
            return RENDERERS[table.figure](torch.load(data, weights_only=False), folder), ""
    return [], f"No figure data under {artifacts} for this table's trials."


def write_report(table: Table, results: pd.DataFrame, folder: Path, formats=FORMATS,
                 artifacts: Path | None = None) -> tuple[str, list[Path]]:
    """Write report.md/.html/.tex and cells.csv (and a figure's PNGs, from the trials' figure data
    under ``artifacts``) into ``folder``; return the Markdown and the paths."""
    summary = summarize(table, results)
    folder.mkdir(parents=True, exist_ok=True)
    pngs, missing = figures(table, results, artifacts, folder) if artifacts else ([], "")
    written = list(pngs)
    text = to_markdown(table, summary) + "".join(f"\n![{p.stem}]({p.name})\n" for p in pngs) + missing
    page = to_html(table, summary).replace(
        "</body>", "".join(f"<p><img src='{p.name}' style='max-width:100%'></p>" for p in pngs) + "</body>")
    makers = {"md": ("report.md", lambda: text), "html": ("report.html", lambda: page),
              "tex": ("report.tex", lambda: to_latex(table, summary)),
              "csv": ("cells.csv", lambda: summary.to_csv(index=False))}
    for fmt in formats:
        name, make = makers[fmt]
        (folder / name).write_text(make())
        written.append(folder / name)
    return text, written
