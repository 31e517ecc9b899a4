"""fmnist_lib.sweep_report: a sweep's points compared, on planted records with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmnist_lib import sweep_report

# point -> (status, best val accuracy over the epochs, test accuracy)
PLANTED = {
    "p00_LR-0.1_SEED-1": ("done", 0.70, 0.69),
    "p01_LR-0.1_SEED-2": ("done", 0.74, 0.79),  # the best test accuracy, not the best val
    "p02_LR-0.3_SEED-1": ("done", 0.80, 0.77),
    "p03_LR-0.3_SEED-2": ("failed", None, None),
}


def plant(folder: Path) -> dict:
    """Run folders with `metrics.json` and `history.json` for PLANTED; return the manifest."""
    points = []
    for pid, (status, val, test) in PLANTED.items():
        lr, seed = (float(pid.split("_")[1][3:]), int(pid.split("_")[2][5:]))
        points.append({"id": pid, "parameters": {"LR": lr, "SEED": seed}, "run_dir": pid})
        points[-1]["status"] = status
        if status != "done":
            continue
        history = folder / pid / "models" / "mlp" / "history.json"
        history.parent.mkdir(parents=True)
        history.write_text(json.dumps([{"val_accuracy": val - 0.05}, {"val_accuracy": val}]))
        training = {"mlp": {"accuracy": test, "macro_f1": test - 0.01, "epochs": 2}}
        (folder / pid / "metrics.json").write_text(json.dumps({"training": training}))
    return {
        "profile": "smoke",
        "parameters": {"EPOCHS": 2},
        "vary": {"LR": [], "SEED": []},
        "points": points,
    }


def test_comparison_table_reads_every_point_and_keeps_the_failed_one(tmp_path):
    table = sweep_report.comparison_table(tmp_path, plant(tmp_path))
    assert list(table.index) == list(PLANTED)
    assert table["val accuracy"].tolist()[:3] == [0.70, 0.74, 0.80]  # the best epoch, not the last
    assert table["test accuracy"].tolist()[:3] == [0.69, 0.79, 0.77]
    failed = table.loc["p03_LR-0.3_SEED-2"]
    assert failed["status"] == "failed" and failed.isna()[["model", "test accuracy"]].all()
    path = sweep_report.write_table(table, tmp_path)
    assert path.read_text().splitlines()[0].startswith("point,LR,SEED,status,model")


def test_parameter_effects_average_over_the_finished_points(tmp_path):
    table = sweep_report.comparison_table(tmp_path, plant(tmp_path))
    effects = sweep_report.parameter_effects(table, ["LR", "SEED"])
    assert effects.loc[("LR", "0.1", "mlp"), "val mean"] == pytest.approx(0.72)
    assert effects.loc[("LR", "0.3", "mlp"), "test max"] == pytest.approx(0.77)  # failed left out
    assert effects.loc[("SEED", "1", "mlp"), "val min"] == pytest.approx(0.70)


def test_best_configuration_is_chosen_on_validation_and_repeated_as_one_run(tmp_path):
    manifest = plant(tmp_path)
    best = sweep_report.best_configuration(
        sweep_report.comparison_table(tmp_path, manifest), manifest
    )
    assert best == {
        "point": "p02_LR-0.3_SEED-1",
        "model": "mlp",
        "val accuracy": 0.80,
        "test accuracy": 0.77,
        "parameters": {"EPOCHS": 2, "LR": 0.3, "SEED": 1},
    }
    assert sweep_report.run_command(manifest, best) == (
        "python -m fmnist_lib run --profile smoke -p EPOCHS 2 -p LR 0.3 -p SEED 1 --models mlp"
    )


def test_no_finished_point_says_so(tmp_path):
    manifest = plant(tmp_path)
    for point in manifest["points"]:
        point["status"] = "failed"
    table = sweep_report.comparison_table(tmp_path, manifest)
    with pytest.raises(ValueError, match="no point of this sweep has finished"):
        sweep_report.best_configuration(table, manifest)
