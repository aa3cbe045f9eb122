"""Report arithmetic on a small results frame: mean ± std over seeds, paper number, difference."""

from __future__ import annotations

import math

import pandas as pd

from harness import metrics as M
from reports.tables import layout, summarize, to_latex, to_markdown
from search_spaces import TABLES


def test_cells_show_mean_std_paper_and_difference():
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
    assert s40["paper"] == 77.12 and math.isclose(s40["diff"], 72.0 - 77.12)
    assert s40["diverged"] == 1 and s40["failed"] == 1
    s30 = base.set_index("col").loc["30%"]
    assert s30["n"] == 1 and math.isnan(s30["std"]) and math.isnan(s30["paper"]) and math.isnan(s30["diff"])

    grid = layout(table, summary)
    assert grid.loc[("Baseline", "ours"), "40%"] == "72.00 ± 2.00 (n=3)"
    assert grid.loc[("Baseline", "paper"), "40%"] == "77.12"
    assert grid.loc[("Baseline", "Δ ours − paper"), "40%"] == "-5.12"
    assert grid.loc[("Baseline", "paper"), "30%"] == "n/r"
    assert grid.loc[("Baseline", "ours"), "50%"] == "—"  # no trial of that cell
    # the derived Gain row: our means 81 - 72 = +9.00 vs the paper's +5.58, difference +3.42
    assert grid.loc[("Gain", "ours"), "40%"] == "+9.00"
    assert grid.loc[("Gain", "paper"), "40%"] == "+5.58"
    assert grid.loc[("Gain", "Δ ours − paper"), "40%"] == "+3.42"
    assert grid.loc[("Gain", "ours"), "30%"] == "—" and grid.loc[("Gain", "paper"), "30%"] == "+5.12"
    text = to_markdown(table, summary)
    assert "1 trial(s) diverged" in text and "1 trial(s) failed" in text and "substituted" not in text
    assert "40\\%" in to_latex(table, summary)


def test_substituted_dataset_is_labelled():
    table = TABLES["pennisi2021.table2"]
    row = {"table": table.name, "cell": table.cells[0].name, "dataset": "fashion_mnist",
           "dataset_label": "fashion_mnist", "profile": "smoke", "seed": 0, "status": "ok", table.metric: 80.0}
    assert "substituted for the paper's cifar10" in to_markdown(table, summarize(table, pd.DataFrame([row])))


def test_overridden_runs_are_shown_apart_never_pooled_into_the_papers_cell():
    """A cell run with a config changed by hand (overrides) is its own labelled block; an earlier run of
    another identity for the same cell and seed is superseded, counted once, and the report says so."""
    table = TABLES["pennisi2021.table3"]
    base = next(c for c in table.cells if c.method == "baseline")
    row = {"table": table.name, "cell": base.name, "dataset": "cifar10", "dataset_label": "cifar10 (jpeg q75)",
           "profile": "mini", "seed": 0, "status": "ok", "overrides": "{}", table.metric: 70.0}
    rows = [{**row, table.metric: 10.0, "identity": "old"}, {**row, "identity": "new"},
            {**row, "identity": "lr", "overrides": '{"lr": 0.1}', table.metric: 40.0}]
    summary = summarize(table, pd.DataFrame(rows))
    plain = summary[(summary["overrides"] == "{}") & (summary["row"] == "Baseline")].iloc[0]
    changed = summary[(summary["overrides"] != "{}") & (summary["row"] == "Baseline")].iloc[0]
    assert plain["n"] == 1 and plain["mean"] == 70.0 and plain["superseded"] == 1
    assert changed["n"] == 1 and changed["mean"] == 40.0 and changed["superseded"] == 0
    text = to_markdown(table, summary)
    assert "overridden, not the paper's cells: lr=0.1" in text
    assert "1 earlier run(s) of these cells and seeds with another identity" in text
