"""A search's report: its trials (best first), the best config, and the objective over p_h and m."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from harness import metrics as M  # noqa: E402
from search_spaces import SearchSpace  # noqa: E402


def write_search_report(space: SearchSpace, trials: pd.DataFrame, folder: Path) -> tuple[str, list[Path]]:
    folder.mkdir(parents=True, exist_ok=True)
    params = list(space.params)
    shown = trials.sort_values("objective", ascending=space.mode != "max", na_position="last")
    shown = shown[["trial_id", "status", *params, "objective", M.TEST_ACC_AT_BEST_VAL_ACC, M.DONE_EPOCHS]]
    finished = shown[shown["status"] == "ok"].dropna(subset=["objective"])
    best = finished.iloc[0] if len(finished) else None
    lines = [f"# search {space.name}", "",
             f"{len(trials)} trials of `{space.cell.method}` ({space.cell.name} of {space.table}); objective "
             f"{space.mode} `{space.metric}`; searched: " + ", ".join(f"{k} in [{lo}, {hi}]" for k, (lo, hi) in space.params.items()),
             "", shown.to_markdown(index=False, floatfmt=".4g"), ""]
    if best is not None:
        lines += ["Best config (finished trials): " + ", ".join(f"{k} = {best[k]:.4g}" for k in params)
                  + f"; objective {best['objective']:.2f}, test accuracy at best validation accuracy "
                  f"{best[M.TEST_ACC_AT_BEST_VAL_ACC]:.2f}", ""]
    written = []
    x, y = params[0], params[1] if len(params) > 1 else params[0]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    sns.scatterplot(data=trials, x=x, y=y, hue="objective", style="status", palette="viridis", s=80, ax=ax)
    ax.set(title=f"{space.name}: {space.metric} over {x} and {y}")
    fig.tight_layout()
    fig.savefig(folder / "objective.png", dpi=110)
    plt.close(fig)
    written.append(folder / "objective.png")
    text = "\n".join(lines) + "\n![objective](objective.png)\n"
    (folder / "report.md").write_text(text)
    html = shown.to_html(index=False, border=0)
    (folder / "report.html").write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{space.name}"
                                        f"</title></head><body><h1>search {space.name}</h1>{html}"
                                        f"<p>{lines[-2] if best is not None else ''}</p>"
                                        "<img src='objective.png'></body></html>\n")
    trials.to_csv(folder / "trials.csv", index=False)
    written += [folder / "report.md", folder / "report.html", folder / "trials.csv"]
    return text, written
