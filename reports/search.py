"""A search's report: its trials (best first), the best config and how to confirm it, and Optuna's own
plots of the search (optuna.visualization.matplotlib): the optimisation history, the parameter
importances and a slice over each searched parameter, as PNGs beside report.md and report.html."""

from __future__ import annotations

import html
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from harness import metrics as M  # noqa: E402
from search_spaces import SearchSpace, shown  # noqa: E402


def write_search_report(space: SearchSpace, trials: pd.DataFrame, folder: Path) -> tuple[str, list[Path]]:
    from harness.search import best_trial

    folder.mkdir(parents=True, exist_ok=True)
    params = list(space.params)
    table = trials.sort_values("objective", ascending=space.mode != "max", na_position="last")
    table = table[["trial_id", "status", *params, "objective", M.TEST_ACC_AT_BEST_VAL_ACC, M.DONE_EPOCHS]]
    best = best_trial(trials, space)
    intro = (f"{len(trials)} trials of `{space.cell.method}` ({space.cell.name} of {space.table}); objective "
             f"{space.mode} `{space.metric}`; searched: "
             + ", ".join(f"{k} in {p}" for k, p in space.params.items()))
    notes = []
    if best is not None:
        notes += ["Best config (finished trials): " + ", ".join(f"{k} = {shown(best[k])}" for k in params)
                  + f"; objective {best['objective']:.2f}, test accuracy at best validation accuracy "
                  f"{best[M.TEST_ACC_AT_BEST_VAL_ACC]:.2f}. It is one draw on one seed: confirm it over seeds "
                  f"beside the paper's cell with `gansweep search {space.name} --confirm-best --seeds 3 --out "
                  f"<this --out>`, then `gansweep report {space.table}`."]
    figures, missing = plots(space, trials, folder)
    notes += missing

    md = [f"# search {space.name}", "", intro, "", table.to_markdown(index=False, floatfmt=".4g"), ""]
    md += [f"{n}\n" for n in notes] + [f"![{title}]({path.name})\n" for title, path in figures]
    text = "\n".join(md)
    (folder / "report.md").write_text(text)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(space.name)}</title></head>"
            f"<body><h1>search {html.escape(space.name)}</h1><p>{html.escape(intro)}</p>"
            + table.to_html(index=False, border=0)
            + "".join(f"<p>{html.escape(n)}</p>" for n in notes)
            + "".join(f"<h2>{html.escape(title)}</h2><p><img src='{html.escape(path.name)}' alt='{html.escape(title)}' "
                      "style='max-width:100%'></p>" for title, path in figures)
            + "</body></html>\n")
    (folder / "report.html").write_text(page)
    trials.to_csv(folder / "trials.csv", index=False)
    written = [path for _, path in figures] + [folder / "report.md", folder / "report.html", folder / "trials.csv"]
    return text, written


def plots(space: SearchSpace, trials: pd.DataFrame, folder: Path) -> tuple[list[tuple[str, Path]], list[str]]:
    """Optuna's plots of the search as PNGs: ``[(title, path)]``, and one line for each plot that cannot
    be drawn, saying why."""
    import optuna
    from optuna.visualization import matplotlib as plot

    from harness.search import export_study

    study = export_study(trials, space, None)  # in memory: the report needs no database
    finished = trials[trials["status"] == "ok"].dropna(subset=["objective"])
    if finished.empty:
        return [], ["No trial finished with an objective yet: no plots."]
    params = list(space.params)
    drawn, missing = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # the matplotlib backend's
        # one finished trial is one point per slice: matplotlib widens the axis itself, and says so
        warnings.filterwarnings("ignore", "Attempting to set identical low and high xlims", UserWarning)
        drawn.append(_save(plot.plot_optimization_history(study, target_name=space.metric),
                           "Optimisation history", folder / "history.png"))
        varied = [k for k in params if finished[k].nunique() > 1]
        if len(finished) < 2 or not varied:
            missing.append(f"Parameter importances need at least 2 finished trials with different parameters "
                           f"({len(finished)} finished" + (")." if len(finished) < 2 else ", all alike)."))
        elif finished["objective"].nunique() < 2:  # fANOVA fails on a constant objective (seen: 2 trials at 82.4)
            missing.append(f"Parameter importances need finished trials whose objectives differ ({len(finished)} "
                           f"finished, all at {finished['objective'].iloc[0]:.4g}).")
        else:
            # NOTE: fANOVA (Optuna's default evaluator) fits a random forest, seeded for a stable report
            evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
            drawn.append(_save(plot.plot_param_importances(study, evaluator=evaluator, target_name=space.metric),
                               "Parameter importances", folder / "importances.png"))
        axes = plot.plot_slice(study, params=params, target_name=space.metric)
        drawn.append(_save(axes, "Slices: " + ", ".join(params), folder / "slices.png", width=4.0 * len(params)))
    return drawn, missing


def _save(axes, title: str, path: Path, width: float | None = None) -> tuple[str, Path]:
    fig = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
    if width:  # NOTE: no tight_layout here: it moved the slice plot's colour bar over its last panel
        fig.set_size_inches(width, 4.0)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return title, path
