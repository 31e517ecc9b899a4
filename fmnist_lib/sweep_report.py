"""A sweep's results (06_sweep_results): the comparison table, parameter effects, best point.

Beside `report.py`, which compares the models of one run, rather than inside it: the two
comparisons read different records (a sweep's points, a run's predictions) and share no helper,
and both would want the name `comparison_table`. Every function takes the manifest or the table
it needs, so this module does not import `sweep` and `sweep` can end a sweep with its results.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from fmnist_lib import records, report


def _best_val_accuracy(run_dir: Path, model: str) -> float | None:
    history = records.read_json(run_dir / "models" / model / "history.json", [])
    return report.best_epoch(history)["best_val_accuracy"]


def comparison_table(sweep_dir: str | os.PathLike[str], manifest: dict[str, Any]) -> pd.DataFrame:
    """One row per point and trained model, read from each run's `metrics.json`."""
    rows = []
    for point in manifest["points"]:
        run_dir = Path(sweep_dir) / point["run_dir"]
        trained = records.read_json(run_dir / "metrics.json", {}).get("training", {})
        base = {"point": point["id"], **point["parameters"], "status": point["status"]}
        for model, m in trained.items() or [(None, {})]:
            rows.append(
                {
                    **base,
                    "model": model,
                    "val accuracy": _best_val_accuracy(run_dir, model) if model else None,
                    "test accuracy": m.get("accuracy"),
                    "macro F1": m.get("macro_f1"),
                    "epochs": m.get("epochs"),
                    "train time (s)": m.get("train_seconds"),
                }
            )
    return pd.DataFrame(rows).set_index("point")


def write_table(table: pd.DataFrame, run_dir: str | os.PathLike[str]) -> Path:
    """Save the comparison as `sweep_comparison.csv` in the run folder."""
    path = Path(run_dir) / "sweep_comparison.csv"
    table.to_csv(path)
    return path


def parameter_effects(table: pd.DataFrame, varied: list[str]) -> pd.DataFrame:
    """Mean, spread and range of validation and test accuracy for each value of each parameter."""
    done = table[table["status"] == "done"]
    parts = {
        key: done.groupby([done[key].map(str), "model"], sort=False)[
            ["val accuracy", "test accuracy"]
        ].agg(["mean", "std", "min", "max"])
        for key in varied
    }
    effects = pd.concat(parts, names=["parameter", "value", "model"])
    effects.columns = [
        f"{split.removesuffix(' accuracy')} {stat}" for split, stat in effects.columns
    ]
    return effects


def best_configuration(table: pd.DataFrame, manifest: dict[str, Any]) -> dict[str, Any]:
    """The point and model with the best validation accuracy (the test set only reports)."""
    done = table[table["status"] == "done"].dropna(subset=["val accuracy"])
    if done.empty:
        raise ValueError("no point of this sweep has finished: nothing to compare")
    order = done.sort_values(["val accuracy", "test accuracy"], ascending=False, kind="stable")
    point, row = order.index[0], order.iloc[0]
    varied = {key: row[key] for key in manifest["vary"]}
    return {
        "point": point,
        "model": row["model"],
        "val accuracy": float(row["val accuracy"]),
        "test accuracy": float(row["test accuracy"]),
        "parameters": {**manifest["parameters"], **_plain(varied)},
    }


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """NumPy scalars from a table row back to Python values."""
    return {k: v.item() if hasattr(v, "item") else v for k, v in values.items()}


def run_command(manifest: dict[str, Any], best: dict[str, Any]) -> str:
    """The `python -m fmnist_lib run` command that repeats the best point as a single run."""
    args = ["python -m fmnist_lib run", f"--profile {manifest['profile']}"]
    args += [f"-p {key} {value}" for key, value in best["parameters"].items()]
    args.append(f"--models {best['model']}")
    return " ".join(args)
