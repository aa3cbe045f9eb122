"""Report arithmetic on small hand-made results frames (no Ray): mean ± 95% CI over seeds, paired gains
and claim verdicts checked against scipy.stats, the paper's number, substitutions, Table 5's collapse
note, the files of a table's and a paper's report, and every figure table's figure (from hand-made results
and figure data)."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats as sps

from harness import metrics as M
from reports import stats
from reports.tables import (claims_of, evaluate_claims, layout, paired_gains, summarize, to_html, to_latex,
                            to_markdown, write_report, write_reports)
from search_spaces import TABLES, Claim

T3 = TABLES["pennisi2021.table3"]
MATCHED = "Baseline, compute-matched"


def _rows(table, values: dict, col: str | None = None, **extra) -> list[dict]:
    """Result rows of ``table``: {row label: [value per seed, None for no trial]} in one column."""
    out = []
    for row, per_seed in values.items():
        cell = next(c for c in table.cells if c.row == row and (col is None or c.col == col))
        for seed, v in enumerate(per_seed):
            if v is not None:
                out.append({"table": table.name, "cell": cell.name, "method": cell.method, "seed": seed, "status": "ok",
                            "dataset": "cifar10", "dataset_label": "cifar10 (jpeg q75)", "profile": "mini",
                            "overrides": "{}", "identity": f"{cell.name}/{seed}", table.metric: v, **extra})
    return out


def _t_interval(x) -> tuple[float, float]:
    x = np.asarray(x, dtype=float)
    return sps.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=sps.sem(x))


def test_cells_show_mean_ci_paper_and_difference():
    table = TABLES["pennisi2021.table2"]
    forty = next(c for c in table.cells if c.col == "40%")
    thirty = next(c for c in table.cells if c.col == "30%")
    rows = [{"table": table.name, "cell": forty.name, "dataset": "cifar10", "dataset_label": "cifar10 (jpeg q75)",
             "profile": "mini", "seed": seed, "status": status, table.metric: acc}
            for seed, (acc, status) in enumerate([(70.0, "ok"), (74.0, "ok"), (72.0, "ok"), (10.0, "diverged"),
                                                  (99.0, "error")])]
    rows.insert(0, {**rows[0], table.metric: 50.0})  # seed 0 of an earlier config: superseded by the later row
    rows.append({**rows[0], "cell": thirty.name, table.metric: 60.0})
    distil = next(c for c in table.cells if c.col == "40%" and c.method == "gan_distillation")
    rows += [{**rows[0], "cell": distil.name, "seed": seed, table.metric: acc} for seed, acc in enumerate((80.0, 82.0))]
    summary = summarize(table, pd.DataFrame(rows))
    base = summary[summary["row"] == "Baseline"]
    s40 = base.set_index("col").loc["40%"]
    assert s40["n"] == 3 and s40["mean"] == 72.0 and s40["std"] == 2.0
    low, high = _t_interval([70.0, 74.0, 72.0])
    assert s40["ci"] == pytest.approx((high - low) / 2) and s40["values"] == {0: 70.0, 1: 74.0, 2: 72.0}
    assert s40["paper"] == 77.12 and math.isclose(s40["diff"], 72.0 - 77.12)
    assert s40["diverged"] == 1 and s40["failed"] == 1
    s30 = base.set_index("col").loc["30%"]
    assert s30["n"] == 1 and math.isnan(s30["ci"]) and math.isnan(s30["paper"]) and math.isnan(s30["diff"])

    grid = layout(table, summary)
    assert grid.loc[("Baseline", "ours"), "40%"] == f"72.00 ± {(high - low) / 2:.2f} (n=3)" == "72.00 ± 4.97 (n=3)"
    assert grid.loc[("Baseline", "ours"), "30%"] == "60.00 (n=1, no CI)"
    assert grid.loc[("Baseline", "paper"), "40%"] == "77.12"
    assert grid.loc[("Baseline", "Δ ours − paper"), "40%"] == "-5.12"
    assert grid.loc[("Baseline", "paper"), "30%"] == "n/r"
    assert grid.loc[("Baseline", "ours"), "50%"] == "—"  # no trial of that cell
    # the derived Gain row is paired over the seeds both cells ran (0 and 1): differences 10 and 8, not the
    # difference of the means (81 - 72); the paper's +5.58 beside it
    gain = sps.ttest_rel([80.0, 82.0], [70.0, 74.0]).confidence_interval(0.95)
    assert grid.loc[("Gain", "ours"), "40%"] == f"+9.00 ± {(gain.high - gain.low) / 2:.2f} (n=2)"
    g40 = paired_gains(table, summary).set_index(["row", "col"]).loc[("Gain", "40%")]
    assert g40["n"] == 2 and g40["mean"] == 9.0 and (g40["mean"] - g40["ci"], g40["mean"] + g40["ci"]) == pytest.approx(
        (gain.low, gain.high))
    assert grid.loc[("Gain", "paper"), "40%"] == "+5.58"
    assert grid.loc[("Gain", "Δ ours − paper"), "40%"] == "+3.42"
    assert grid.loc[("Gain", "ours"), "30%"] == "—" and grid.loc[("Gain", "paper"), "30%"] == "+5.12"
    text = to_markdown(table, summary)
    assert "1 trial(s) diverged" in text and "1 trial(s) failed" in text and "substituted" not in text
    assert "95% confidence interval" in text
    assert "40\\%" in to_latex(table, summary)


def test_rows_of_other_work_are_printed_beside_the_table_and_never_planned():
    """DeGAN's Table 1 prints Kimura et al. and ZSKD from their papers: shown with the paper's number and 'not
    run' in every format, after the table's own rows; no trial is planned for them."""
    from search_spaces import plan

    table = TABLES["addepalli2020.table1"]
    reported = {r.row: r for r in table.reported}
    assert set(reported) == {"Kimura et al.", "ZSKD"}
    assert not {t.cell.row for t in plan([table.name], "smoke", seeds=1)} & set(reported)
    summary = summarize(table, pd.DataFrame(_rows(table, {"(Ours) DeGAN": [80.0, 82.0]}, col="F-MNIST")))
    grid = layout(table, summary)
    assert grid.loc[("ZSKD", "paper"), "F-MNIST"] == "79.62" and grid.loc[("Kimura et al.", "paper"), "F-MNIST"] == "72.50"
    assert grid.loc[("ZSKD", "ours"), "F-MNIST"].startswith("not run (Nayak et al. 2019")
    assert grid.loc[("ZSKD", "Δ ours − paper"), "F-MNIST"] == "—" and grid.loc[("ZSKD", "paper"), "Class balance (%)"] == ""
    rows = list(dict.fromkeys(grid.index.get_level_values("row")))
    assert rows[-2:] == ["Kimura et al.", "ZSKD"]  # after the table's own rows
    for text in (to_markdown(table, summary), to_html(table, summary), to_latex(table, summary)):
        assert "79.62" in text and "Kimura et al. 2018" in text


def test_mean_ci_matches_scipy_t_interval():
    for x in ([70.0, 74.0, 72.0], [1.0, 2.0], [3.5, 3.1, 4.8, 2.2, 5.0]):
        est = stats.mean_ci(x)
        assert (est.low, est.high) == pytest.approx(_t_interval(x)) and est.n == len(x)
    one = stats.mean_ci([5.0])
    assert one.n == 1 and math.isnan(one.half) and one.text() == "5.00 (n=1, no CI)"
    assert stats.mean_ci([]).text() == "—"
    assert stats.mean_ci([2.0, float("nan"), 4.0]).n == 2  # a missing metric is left out, not counted as 0
    same = stats.mean_ci([3.0, 3.0, 3.0])  # no spread: the interval is the point (scipy's t.interval gives NaN)
    assert same.half == 0 and same.low == 3.0


def test_paired_difference_matches_ttest_rel_on_matched_seeds():
    a = {0: 74.0, 1: 75.5, 2: 73.0, 3: 80.0, 4: float("nan")}
    b = {0: 70.0, 1: 72.0, 2: 71.5, 4: 60.0, 5: 65.0}  # seed 3 and 5 unmatched, seed 4 has no value in a
    est = stats.paired(a, b)
    ci = sps.ttest_rel([74.0, 75.5, 73.0], [70.0, 72.0, 71.5]).confidence_interval(0.95)
    assert est.n == 3 and est.mean == pytest.approx(3.0) and (est.low, est.high) == pytest.approx((ci.low, ci.high))


def test_verdict_arithmetic():
    up, down, wide = stats.Estimate(2.0, 1.0, 3), stats.Estimate(-2.0, 1.0, 3), stats.Estimate(0.5, 1.0, 3)
    single = stats.mean_ci([4.0])
    assert stats.verdict([up, up]) == stats.REPRODUCED
    assert stats.verdict([up, wide]) == stats.INCONCLUSIVE
    assert stats.verdict([up, down]) == stats.CONTRADICTED  # any comparison below 0
    assert stats.verdict([up, single]) == stats.INCONCLUSIVE  # one seed has no interval
    assert stats.verdict([stats.Estimate(1.0, 1.0, 3)]) == stats.INCONCLUSIVE  # touching 0 is not strictly above
    assert stats.verdict([]) == stats.NOT_RUN == stats.verdict([stats.mean_ci([])])


def test_claims_are_tested_on_paired_differences():
    """Table 3's claims on a hand-made frame: the verdicts, and each comparison's interval against
    scipy's paired t-test on the same seeds."""
    values = {"Baseline": [70.0, 71.0, 69.0], "GAN augmentation": [65.0, 66.5, 64.0],
              "GAN distillation": [74.0, 76.0, 73.5], MATCHED: [73.0, 77.0, 72.0]}
    summary = summarize(T3, pd.DataFrame(_rows(T3, values)))
    results = {r.claim.text: r for r in evaluate_claims(claims_of([T3]), {T3.name: summary})}
    distil_vs_aug = results["GAN distillation beats GAN augmentation (Table 3)"]
    assert distil_vs_aug.verdict == "reproduced" and distil_vs_aug.profile == "mini"
    (c,) = distil_vs_aug.comparisons
    ci = sps.ttest_rel(values["GAN distillation"], values["GAN augmentation"]).confidence_interval(0.95)
    assert (c.difference.low, c.difference.high) == pytest.approx((ci.low, ci.high)) and c.difference.n == 3
    assert results["GAN augmentation beats the baseline (Table 3)"].verdict == "contradicted"
    control = next(r for r in results.values() if r.claim.ours)
    assert control.verdict == "inconclusive"  # differences 1, -1, 1.5: the interval holds 0

    # lower is better: the difference is taken worse - better, so a lower "better" row reproduces
    fid = Claim("the baseline has the lower number", T3.name, better=("Baseline",), worse=("GAN distillation",),
                lower_is_better=True)
    (r,) = evaluate_claims([fid], {T3.name: summary})
    assert r.verdict == "reproduced" and r.comparisons[0].difference.mean == pytest.approx(74.5 - 70.0)

    # one seed: inconclusive; a cell without trials: that comparison is left out; no table results: not run
    one = summarize(T3, pd.DataFrame(_rows(T3, {"GAN distillation": [74.0], "GAN augmentation": [60.0]})))
    results = {r.claim.text: r for r in evaluate_claims(claims_of([T3]), {T3.name: one})}
    assert results["GAN distillation beats GAN augmentation (Table 3)"].verdict == "inconclusive"
    assert results["GAN augmentation beats the baseline (Table 3)"].verdict == "not run"
    (none,) = evaluate_claims([fid], {})
    assert none.verdict == "not run" and none.profile is None

    # a claim over two comparisons of which one ran (the other's cells have no trials): shown "where run"
    two = Claim("distillation beats augmentation and the baseline", T3.name, better=("GAN distillation",),
                worse=("GAN augmentation", "Baseline"))
    partial = summarize(T3, pd.DataFrame(_rows(T3, {k: values[k] for k in ("GAN distillation", "GAN augmentation")})))
    (r,) = evaluate_claims([two], {T3.name: partial})
    assert (r.verdict, r.label, r.planned, len(r.comparisons)) == ("reproduced", "reproduced where run", 2, 1)
    assert "**reproduced where run** (paper's claim)" in to_markdown(T3, partial, [r])
    (r,) = evaluate_claims([two], {T3.name: summary})
    assert r.label == "reproduced"

    md = to_markdown(T3, summary, evaluate_claims(claims_of([T3]), {T3.name: summary}))
    assert md.index("## Claims") < md.index("## dataset")
    assert "**reproduced** (paper's claim): GAN distillation beats GAN augmentation" in md
    assert "(gansweep's control, not the paper's claim)" in md
    assert f"GAN distillation vs GAN augmentation: +{np.mean([9.0, 9.5, 9.5]):.2f} ± " in md
    assert "tested at pennisi2021.table3: dataset cifar10 (jpeg q75); profile mini; 3 seed(s)" in md


def test_capped_trials_are_named_and_overridden_blocks_get_verdicts_of_their_own():
    """A trial that ran all its epochs with early stopping on has not converged: the report's notes and every
    claim comparing it name it. A block of `--set` runs (Pham's real rows at a higher cap) is tested on its own,
    after the paper's cells and labelled with its overrides; a claim it holds one side of is not tested there."""
    import json

    table = TABLES["pham2019.table1"]
    steps, epochs = "10K-real, same #steps", "10K-real, same #epochs"
    claim = next(c for c in claims_of([table]) if c.better == (steps,))
    more_gans = next(c for c in claims_of([table]) if c.worse == ("1 GAN",))

    def rows(values, overrides="{}", cap=60, capped=()):
        out = _rows(table, values, col="Error (%)", overrides=overrides)
        for r in out:
            stopped = not (r["cell"].startswith(epochs) and r["seed"] in capped)
            r.update({"config": json.dumps({"epochs": cap, "patience": 8}), M.STOPPED_EARLY: int(stopped),
                      M.DONE_EPOCHS: 30 if stopped else cap, M.DIVERGED: 0})
        return out

    real = {steps: [18.0, 18.5, 17.5], epochs: [22.0, 23.0, 22.5]}
    plain = rows({**real, "1 GAN": [33.0, 34.0, 35.0], "4 GANs": [30.0, 29.0, 28.0]}, capped=(1,))
    higher = rows(real, overrides=json.dumps({"epochs": 100}), cap=100)
    summary = summarize(table, pd.DataFrame(plain + higher))
    results = [r for r in evaluate_claims([claim, more_gans], {table.name: summary})]
    assert [(r.claim.text, r.overrides) for r in results] == [
        (claim.text, "{}"), (claim.text, '{"epochs": 100}'), (more_gans.text, "{}")]
    at_cap, at_100, gans = results
    assert at_cap.capped == (f"{epochs} (seed 1)",) and at_100.capped == () and gans.capped == ()
    assert at_cap.verdict == at_100.verdict == "reproduced" and gans.verdict == "reproduced"
    md = to_markdown(table, summary, results)
    assert f"not converged, ran to the epoch cap: {epochs} (seed 1)" in md
    assert "profile mini; overridden, not the paper's cells: epochs=100; 3 seed(s)" in md
    assert f"Not converged: trials that ran to their epoch cap" in md and f"{epochs} (seed 1)." in md
    assert md.count("Not converged") == 1  # the block at epochs=100 has none
    headings = [line for line in md.splitlines() if line.startswith("## dataset")]
    assert len(headings) == 2 and "overridden" not in headings[0] and "epochs=100" in headings[1]  # paper's first


def test_a_cell_shows_its_own_metric():
    """gan_fid's cells are FIDs (lower is better), not the table's accuracy; a FID missing for want of
    Inception weights is not a value (n=0) and the report says why."""
    table = TABLES["pennisi2021.gan_fid"]
    inception, classifier = table.cells
    assert inception.metric == M.FID_PRETRAINED_INCEPTION and classifier.metric == M.FID_PRETRAINED_CLASSIFIER
    rows = [{"table": table.name, "cell": cell.name, "method": cell.method, "seed": seed, "status": "ok",
             "dataset": "cifar10", "dataset_label": "cifar10", "profile": "mini", "overrides": "{}",
             "identity": f"{cell.name}{seed}", table.metric: 70.0, M.FID_PRETRAINED_INCEPTION: float("nan"),
             M.FID_PRETRAINED_CLASSIFIER: fid, M.METRIC_MISSING_REASON: "no Inception weights"}
            for cell in table.cells for seed, fid in enumerate((30.0, 34.0))]
    summary = summarize(table, pd.DataFrame(rows)).set_index("col")
    assert summary.loc["FID (classifier features)", "mean"] == 32.0
    assert summary.loc["FID (classifier features)", "metric"] == M.FID_PRETRAINED_CLASSIFIER
    assert summary.loc["FID (Inception)", "n"] == 0 and summary.loc["FID (Inception)", "paper"] == 20.05
    text = to_markdown(table, summary.reset_index())
    assert "FID of the pre-trained GAN, stage-1 classifier features (lower is better)" in text
    assert "Inception FID / IS / KID are missing: no Inception weights" in text and "70.00" not in text


def test_substituted_dataset_and_backbones_are_labelled_in_every_format():
    table = TABLES["pennisi2021.table2"]
    row = {"table": table.name, "cell": table.cells[0].name, "dataset": "fashion_mnist",
           "dataset_label": "fashion_mnist", "profile": "smoke", "seed": 0, "status": "ok", table.metric: 80.0}
    assert "substituted for the paper's cifar10" in to_markdown(table, summarize(table, pd.DataFrame([row])))

    sub = T3.substitution("converge")
    assert sub and "fashion_mnist for cifar10" in sub
    rows = [{**r, "dataset": "fashion_mnist", "dataset_label": "fashion_mnist", "profile": "converge"}
            for r in _rows(T3, {"Baseline": [90.0, 91.0]})]
    summary = summarize(T3, pd.DataFrame(rows))
    heading = f"profile converge — substituted: {sub}"
    assert heading in to_markdown(T3, summary) and "for the paper's" not in to_markdown(T3, summary)
    assert heading.replace("'", "&#x27;") in to_html(T3, summary)
    assert "substituted: fashion\\_mnist for cifar10" in to_latex(T3, summary)
    # the claims say the budget they were tested at, substitution included
    (result, *_) = evaluate_claims(claims_of([T3]), {T3.name: summary})
    assert heading in to_markdown(T3, summary, [result])


def test_overridden_runs_are_shown_apart_never_pooled_into_the_papers_cell():
    """A cell run with a config changed by hand (overrides) is its own labelled block; an earlier run of
    another identity for the same cell and seed is superseded, counted once, and the report says so."""
    base = next(c for c in T3.cells if c.method == "baseline")
    row = {"table": T3.name, "cell": base.name, "dataset": "cifar10", "dataset_label": "cifar10 (jpeg q75)",
           "profile": "mini", "seed": 0, "status": "ok", "overrides": "{}", T3.metric: 70.0}
    rows = [{**row, T3.metric: 10.0, "identity": "old"}, {**row, "identity": "new"},
            {**row, "identity": "lr", "overrides": '{"lr": 0.1}', T3.metric: 40.0}]
    summary = summarize(T3, pd.DataFrame(rows))
    plain = summary[(summary["overrides"] == "{}") & (summary["row"] == "Baseline")].iloc[0]
    changed = summary[(summary["overrides"] != "{}") & (summary["row"] == "Baseline")].iloc[0]
    assert plain["n"] == 1 and plain["mean"] == 70.0 and plain["superseded"] == 1
    assert changed["n"] == 1 and changed["mean"] == 40.0 and changed["superseded"] == 0
    text = to_markdown(T3, summary)
    assert "overridden, not the paper's cells: lr=0.1" in text
    assert "1 earlier run(s) of these cells and seeds with another identity" in text
    # claims are tested on the paper's cells only
    assert all(r.verdict == "not run" or "overridden" not in str(r) for r in
               evaluate_claims(claims_of([T3]), {T3.name: summary}))


def test_table5_says_when_the_collapsed_row_collapsed_and_which_snapshot_the_other_used():
    table = TABLES["pennisi2021.table5"]
    collapsed = _rows(table, {"Collapsed images": [74.0, 75.0, 73.0]})
    kept = _rows(table, {"Non-collapsed images": [70.0, 71.0, 70.5]})
    for r, epoch, done, early in zip(collapsed, (12, 15, -1), (20, 25, 30), (1, 1, 0)):
        r.update({M.COLLAPSE_EPOCH: epoch, M.DONE_EPOCHS: done, M.STOPPED_EARLY: early})
    for r, snap in zip(kept, (11, 14, None)):
        r.update({M.COLLAPSE_EPOCH: -1, M.SNAPSHOT_EPOCH: snap})
    text = to_markdown(table, summarize(table, pd.DataFrame(collapsed + kept)))
    assert "Collapsed images: collapsed in 2 of 3 seeds (epochs 12, 15, -); epochs run 20, 25, 30; " \
           "early stopping ended 2 of 3." in text
    assert "Non-collapsed images: sampled the pre-collapse generator snapshot of epoch 11, 14, - (seeds 0, 1, 2)." \
           in text
    # older rows: no snapshot_epoch (nor stopped_early, done_epochs) column at all
    for r in collapsed:
        del r[M.DONE_EPOCHS], r[M.STOPPED_EARLY]
    for r in kept:
        del r[M.SNAPSHOT_EPOCH]
    text = to_markdown(table, summarize(table, pd.DataFrame(collapsed + kept)))
    assert "collapsed in 2 of 3 seeds (epochs 12, 15, -)." in text
    assert "snapshot's epoch is not recorded in these results" in text


def _html_images(page: str) -> list[str]:
    return re.findall(r"<img src='([^']+)'", page)


def test_report_files_figures_and_a_papers_report(tmp_path):
    """A table's report writes a figure per block, embedded in its HTML; a report of several tables of
    one paper also writes the paper's report: the claims first, then the tables, images linked."""
    t4, t5 = TABLES["pennisi2021.table4"], TABLES["pennisi2021.table5"]
    rows = (_rows(T3, {"Baseline": [70.0, 71.0, 69.0], "GAN augmentation": [72.0, 73.0, 71.0],
                       "GAN distillation": [74.0, 76.0, 73.5], MATCHED: [73.0, 77.0, 72.0]})
            + _rows(t4, {"100/0": [70.0, 71.0, 70.0], "50/50": [74.0, 76.0, 75.0], "0/100": [58.0, 60.0, None]})
            + _rows(t5, {"Collapsed images": [74.0, 76.0, 73.5], "Non-collapsed images": [70.0, 71.0]}))
    results = pd.DataFrame(rows)

    text, written = write_report(T3, results, tmp_path / "one")
    names = {p.name for p in written}
    assert {"report.md", "report.html", "report.tex", "cells.csv"} <= names
    (png,) = [p for p in written if p.suffix == ".png"]
    assert png.stat().st_size > 10_000 and png.name in _html_images((tmp_path / "one" / "report.html").read_text())
    assert text.index("## Claims") < text.index("## dataset")
    cells = pd.read_csv(tmp_path / "one" / "cells.csv")
    assert len(cells) == len(T3.cells) and cells["ci"].notna().all()

    ((text, written),) = write_reports([T3, t4, t5], results, tmp_path / "reports")
    paper = tmp_path / "reports" / "pennisi2021"
    assert paper / "report.html" in written and (tmp_path / "reports" / t4.name / "report.md") in written
    assert text.startswith("# pennisi2021: ") and text.index("## Claims") < text.index("## pennisi2021.table3")
    assert text.index("pennisi2021.table3:") < text.index("pennisi2021.table4:") < text.index("pennisi2021.table5:")
    # Table 4's claim: 50/50 beats 100/0 and 0/100 on the seeds they share (0/100 ran seeds 0 and 1)
    assert "p_r between 25% and 75%" in text and "50/50 vs 0/100: +16.00 ± " in text and "(n=2)" in text
    page = (paper / "report.html").read_text()
    assert page.index("<h2>Claims</h2>") < page.index("<h2>pennisi2021.table3")
    images = _html_images(page)
    assert len(images) == 3 and all((paper / src).is_file() for src in images)
    assert all(src.startswith("../pennisi2021.table") for src in images)

    # tables of several papers: a paper with one table given has no paper's report; one with two has
    quick = TABLES["quickstart"]  # (no results of either table here: no figure to draw)
    both = write_reports([TABLES["pennisi2021.gan_fid"], quick], results, tmp_path / "mixed")
    assert len(both) == 2 and not (tmp_path / "mixed" / "pennisi2021").exists()
    three = write_reports([T3, quick, t4], results, tmp_path / "all")
    assert [text.splitlines()[0] for text, _ in three][0].startswith("# pennisi2021: ") and len(three) == 2
    assert (tmp_path / "all" / "pennisi2021" / "report.html").is_file()


# ---- figure tables: every registered one drawn from hand-made results and figure data (no Ray) ---------------

FIGURE_TABLES = [name for name, t in TABLES.items() if t.figure]


def _figure_data(classes: int = 10, n: int = 40) -> dict:
    """Figure data with every key a renderer reads (gan_distillation's and filtered_sampling / multi_gan's),
    random: t-SNE features with a class structure, grids of noise, filter verdicts of each kind, Slim's weights, and
    degan's per-epoch teacher's view."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % classes
    feats = lambda: torch.randn(n, 16, generator=g) + 3 * torch.nn.functional.one_hot(labels, 16).float()
    grid_labels = torch.arange(classes).repeat(4)
    return {"features": {k: feats() for k in ("easy_before", "hard_before", "easy_after", "generated_after", "real",
                                              "generated")},
            "labels": {k: labels for k in ("easy", "hard", "generated", "real")},
            "grid_before": torch.randint(0, 256, (8 * classes, 3, 32, 32), dtype=torch.uint8, generator=g),
            "grid_after": torch.randint(0, 256, (8 * classes, 3, 32, 32), dtype=torch.uint8, generator=g),
            "history": [{M.EPOCH: e, M.FID_CLASSIFIER: 50.0 - e, M.TEST_ACC: 60.0 + e, M.DIVERSITY_RATIO: 1.0 / e}
                        for e in range(1, 6)],
            "grid": torch.randint(0, 256, (len(grid_labels), 3, 32, 32), dtype=torch.uint8, generator=g),
            "grid_labels": grid_labels, "grid_verdicts": torch.arange(len(grid_labels)) % 3,
            "gan_history": [{M.EPOCH: e, M.KD_SOURCE_HISTOGRAM: [e + c for c in range(classes)],
                             M.KD_SOURCE_BALANCE: 90.0 + e} for e in range(1, 3)],  # degan's
            "proxy": {"source": "cifar10"},
            "verdict_codes": {"accepted": 0, "wrong_label": 1, "low_prob": 2},
            "threshold": 0.9, "filtering": True, "truncation": 0.0,
            "weights": {"class": 8, "method": "A_mu", "weights": torch.rand(n, generator=g).double(),
                        "normalised": torch.rand(n, generator=g).double(), "real": feats(), "generated": feats()}}


def _figure_rows(table, seeds: int = 2, classes: int = 10) -> list[dict]:
    """Results rows of every cell of ``table``: a metric value per seed, the filter's per-class counts."""
    out = []
    for i, cell in enumerate(table.cells):
        for seed in range(seeds):
            counts = {f"filter_{k}": [float(10 + c + i + j) for c in range(classes)]
                      for j, k in enumerate(("accepted", "wrong_label", "low_prob"))}
            out.append({"table": table.name, "cell": cell.name, "row": cell.row, "col": cell.col,
                        "method": cell.method, "seed": seed, "status": "ok", "dataset": table.dataset,
                        "dataset_label": table.dataset, "profile": "smoke", "overrides": "{}",
                        "identity": f"{table.name}-{i}-{seed}", table.metric: 20.0 + i + seed, **counts,
                        "filter_forced": [0.0] * classes, "generated_images": sum(map(sum, counts.values()))})
    return out


@pytest.mark.parametrize("name", FIGURE_TABLES)
def test_every_figure_table_draws_its_figure(name, tmp_path):
    """Each figure table's renderer draws a PNG per block from its cells' results and its trials' figure data,
    linked from the report; without figure data a renderer that needs it says so instead."""
    table = TABLES[name]
    rows, data = _figure_rows(table), _figure_data()
    for r in rows:  # each trial's figure data, where the trainables save it: <out>/artifacts/<identity>/
        (tmp_path / "artifacts" / r["identity"]).mkdir(parents=True)
        torch.save(data, tmp_path / "artifacts" / r["identity"] / "figure_data.pt")
    text, written = write_report(table, pd.DataFrame(rows), tmp_path / "report", artifacts=tmp_path / "artifacts")
    pngs = [p for p in written if p.suffix == ".png"]
    assert pngs and all(p.stat().st_size > 5000 for p in pngs), pngs
    assert all(p.name in text for p in pngs) and "No figure data" not in text

    text, written = write_report(table, pd.DataFrame(rows), tmp_path / "bare", artifacts=tmp_path / "nothing")
    if not [p for p in written if p.suffix == ".png"]:  # a renderer of figure data: says why there is no figure
        assert "No figure data under" in text


def test_error_vs_size_reads_sizes_from_columns_and_draws_generated_rows_as_lines():
    from reports.figures import _size

    assert _size("10K") == 10 and _size("50K") == 50 and math.isnan(_size("GAN images"))
    fig1 = TABLES["pham2019.fig1"]
    curves = {c.row for c in fig1.cells if not math.isnan(_size(c.col))}
    assert curves == {"Real, same #epochs", "Real, same #steps"}
    assert {c.row for c in fig1.cells} - curves == {"1 GAN", "2 GANs", "4 GANs", "6 GANs"}
    # every cell is Table I's cell of the same config (so the same trial): no new trials for the figure
    table1 = {(c.method, tuple(sorted(c.settings.items()))) for c in TABLES["pham2019.table1"].cells}
    assert all((c.method, tuple(sorted(c.settings.items()))) in table1 for c in fig1.cells)
