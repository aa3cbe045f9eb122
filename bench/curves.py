"""Print every stage's validation curve from a run's --out folder: is each stage flat where it stopped?

    python bench/curves.py --out runs [--table quickstart] [--seed 0]

For each classifier stage (a baseline cell: validation accuracy per epoch), each GAN stage (classifier-
feature FID per epoch, when it early-stopped on it), each DeGAN generator (the teacher's class balance of its
samples per epoch) and each other trial (validation accuracy per epoch: stage 3 of GAN distillation, a DeGAN
student, a class-incremental step, a classifier on generated images), one line: where the best epoch was, where training stopped, and the curve. Evidence
for issue 8's "the baseline's validation accuracy has plateaued at that budget (its curve)".
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pandas as pd
import torch


def _fmt(values) -> str:
    return " ".join("nan" if not math.isfinite(v) else f"{v:.1f}" for v in values)


def classifier_stages(stages: Path) -> None:
    for folder in sorted(stages.glob("classifier-*")):
        if "." in folder.name:
            continue
        fitted = torch.load(folder / "classifier.pt", weights_only=False)
        h = fitted["history"]
        accs = [r["val_acc"] for r in h]
        best = max(range(len(accs)), key=lambda i: (accs[i], -i))
        print(f"classifier {folder.name[:27]}: "
              f"{len(h)} epochs, best val acc {accs[best]:.2f} at epoch {best + 1}; "
              f"last 5 epochs: {_fmt(accs[-5:])}")
        print(f"    val acc per epoch: {_fmt(accs)}")


def gan_stages(stages: Path) -> None:
    for folder in sorted(stages.glob("gan-*")):
        if "." in folder.name:
            continue
        payload = torch.load(folder / "gan.pt", weights_only=False)
        fids = [r.get("fid", math.nan) for r in payload["history"]]
        print(f"gan {folder.name[:30]}: {len(fids)} epochs, kept epoch {payload.get('best_epoch')}; "
              f"FID per epoch: {_fmt(fids)}")


def degan_generators(stages: Path) -> None:
    """DeGAN's generators train fixed epochs (no validation signal): the teacher's class balance of their samples
    per epoch, the signal the diversity loss is for."""
    for folder in sorted(stages.glob("degan_generator-*")):
        if "." in folder.name:
            continue
        history = torch.load(folder / "generator.pt", weights_only=False)["history"]
        balance = [r.get("kd_source_balance", math.nan) for r in history]
        print(f"degan generator {folder.name[:32]}: {len(history)} epochs; class balance (%) per epoch: "
              f"{_fmt(balance)}")


def trials(out: Path, table: str | None, seed: int | None) -> None:
    """Each trial's own training (stage 3 of gan_distillation, a DeGAN student, a class-incremental step, a
    classifier on generated images): validation accuracy per epoch, as its Tune reports have it."""
    if not (out / "results.parquet").exists():
        print("trials: no results.parquet yet (it is written when the run ends)")
        return
    rows = pd.read_parquet(out / "results.parquet")
    rows = rows[rows["method"] != "baseline"]  # a baseline is its classifier stage, printed above
    if table:
        rows = rows[rows["table"] == table]
    if seed is not None:
        rows = rows[rows["seed"] == seed]
    for _, row in rows.drop_duplicates("identity").iterrows():
        path = Path(row["trial_path"]) / "result.json"
        if not path.exists():  # a trial filed on another machine: results.parquet travelled, Tune's folder did not
            print(f"{row['method']} {row['table']} {row['cell']} seed {row['seed']}: its Tune folder is not here "
                  f"({path.parent.name}); stopped early {bool(row.get('stopped_early'))}, "
                  f"best val acc epoch {row['best_val_acc_epoch']:.0f} of {row['done_epochs']:.0f}")
            continue
        lines = path.read_text().splitlines()
        reports = [json.loads(x) for x in lines if x.strip()]
        accs = [r.get("val_acc", math.nan) for r in reports]
        print(f"{row['method']} {row['table']} {row['cell']} seed {row['seed']}: {len(accs)} epochs, "
              f"stopped early {bool(row.get('stopped_early'))}, best val acc epoch {row['best_val_acc_epoch']:.0f}; "
              f"val acc per epoch: {_fmt(accs)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--table")
    p.add_argument("--seed", type=int)
    args = p.parse_args()
    stages = args.out / "cache" / "stages"
    classifier_stages(stages)
    gan_stages(stages)
    degan_generators(stages)
    trials(args.out, args.table, args.seed)


if __name__ == "__main__":
    main()
