"""fmnist_lib.pipeline and the command line: validation, run folders, end-to-end smoke run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from fmnist_lib import config, pipeline

CLI = [sys.executable, "-m", "fmnist_lib"]


def cli(*args: str, cwd: Path = config.PROJ_ROOT, timeout: int = 900):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


# --- parameter validation -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "type_name", "expected"),
    [
        ("3", "int", 3),
        ("0.5", "float", 0.5),
        ("2", "float", 2.0),
        ("true", "bool", True),
        ("False", "bool", False),
        ("cnn", "str", "cnn"),
        ("42", "str", "42"),
        (7, "int", 7),
    ],
)
def test_coerce_parses_by_declared_type(value, type_name, expected):
    out = pipeline.coerce("X", value, type_name)
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        ("three", "int"),
        ("1.5", "int"),
        ("maybe", "bool"),
        (True, "int"),
        (1.5, "int"),
        ("x", "float"),
        (3, "str"),
        (1, "bool"),
    ],
)
def test_coerce_refuses_wrong_types(value, type_name):
    with pytest.raises(pipeline.ParameterError, match=f"X: expected {type_name}"):
        pipeline.coerce("X", value, type_name)


def test_plan_expands_training_runs_and_applies_overrides():
    steps = pipeline.plan("smoke", {"EPOCHS": "4", "SEED": "7"})
    names = [s.name for s in steps]
    assert names == [
        "01_eda",
        "02_preprocessing",
        "03_training_mlp",
        "03_training_cnn",
        "03_training_resnet50",
        "04_results",
        "05_presentation",
    ]
    training = [s for s in steps if s.notebook == "03_training"]
    assert {s.parameters["EPOCHS"] for s in training} == {4}
    assert all(s.parameters["SEED"] == 7 for s in steps if "SEED" in s.parameters)
    assert [
        s.name for s in pipeline.plan("smoke", models=["cnn"]) if s.notebook == "03_training"
    ] == ["03_training_cnn"]


def test_plan_lists_valid_parameters_on_error():
    with pytest.raises(pipeline.ParameterError) as info:
        pipeline.plan("smoke", {"EPOCHZ": "3", "BATCH_SIZE": "big"})
    msg = str(info.value)
    assert "unknown parameter 'EPOCHZ'" in msg
    assert "BATCH_SIZE: expected int, got 'big'" in msg
    assert "EPOCHS: int = 3" in msg  # the listing of valid parameters with types and defaults


def test_semantic_errors_are_caught_before_execution():
    with pytest.raises(pipeline.ParameterError, match="IMAGE_SIZE=16"):
        pipeline.plan("smoke", {"IMAGE_SIZE": "16"})
    with pytest.raises(pipeline.ParameterError, match="MODEL='vgg'"):
        pipeline.plan("smoke", {"MODEL": "vgg"}, models=None)
    with pytest.raises(pipeline.ParameterError, match="PRECISION='bf16'.*mixed_bfloat16"):
        pipeline.plan("smoke", {"PRECISION": "bf16"})


def test_unknown_profile():
    with pytest.raises(pipeline.ParameterError, match="unknown profile 'nope'.*default"):
        pipeline.plan("nope")


def test_every_profile_is_valid():
    for path in sorted(config.PARAMS_DIR.glob("*.yaml")):
        assert pipeline.plan(path.stem), path


def test_cli_refuses_bad_parameter_before_executing(tmp_path):
    out = cli("run", "--profile", "smoke", "-p", "EPOCHS", "two", "--runs-dir", str(tmp_path))
    assert out.returncode == 2, out.stderr
    assert "EPOCHS: expected int, got 'two'" in out.stderr
    assert "LEARNING_RATE: float = 0.001" in out.stderr
    assert list(tmp_path.iterdir()) == []  # nothing was executed or created


# --- run folders ----------------------------------------------------------------------


def test_run_folders_are_never_shared(tmp_path):
    with ThreadPoolExecutor(8) as pool:
        dirs = list(pool.map(lambda _: pipeline.new_run_dir("smoke", tmp_path), range(64)))
    assert len(set(dirs)) == 64 and all((d / "figures").is_dir() for d in dirs)


# --- end to end -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    out = cli("run", "--profile", "smoke", "--runs-dir", str(root))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (run_dir,) = root.iterdir()
    return run_dir, out.stdout


@pytest.mark.slow
def test_smoke_run_leaves_every_artifact(smoke_run, real_ds):
    run_dir, stdout = smoke_run
    notebooks = sorted(p.name for p in run_dir.glob("*.ipynb"))
    assert notebooks == [
        "01_eda.ipynb",
        "02_preprocessing.ipynb",
        "03_training_cnn.ipynb",
        "03_training_mlp.ipynb",
        "03_training_resnet50.ipynb",
        "04_results.ipynb",
        "05_presentation.ipynb",
    ]
    assert "[7/7] 05_presentation: done in" in stdout
    deck = (run_dir / "slides.html").read_text()
    assert "https://" not in deck and "Reveal.initialize" in deck
    for name in (
        "eda_class_distribution",
        "results_training_curves",
        "results_confusion_best",
        "results_predictions",
        "presentation_system_design",
    ):
        png = run_dir / "figures" / f"{name}.png"
        dpi = Image.open(png).info["dpi"][0]
        assert dpi >= 149, (png, dpi)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["training"]) == {"mlp", "cnn", "resnet50"}
    assert metrics["eda"]["data_md5"] == real_ds.md5s()
    for m in metrics["training"].values():
        assert 0.0 <= m["accuracy"] <= 1.0 and m["n"] == 500
    assert metrics["training"]["resnet50"]["weights_used"] in {"imagenet", "random"}
    assert metrics["results"]["best_model"] in metrics["training"]


@pytest.mark.slow
def test_smoke_run_record(smoke_run, real_ds):
    run_dir, _ = smoke_run
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "done" and record["profile"] == "smoke"
    assert record["data"]["files"]["train_images"]["md5"] == real_ds.md5s()["train_images"]
    assert record["versions"]["keras"] and record["versions"]["papermill"]
    assert len(record["git"]["commit"] or "") == 40
    assert record["device"]["keras_backend"] == "tensorflow"
    assert [s["status"] for s in record["steps"]] == ["done"] * 7
    assert record["slides"] == "slides.html"
    assert all(s["seconds"] > 0 for s in record["steps"])
    assert record["parameters"]["03_training_mlp"]["BATCH_SIZE"] == 128  # defaults recorded


@pytest.mark.slow
def test_failed_notebook_is_kept_and_named(tmp_path):
    out = cli(
        "run",
        "--profile",
        "smoke",
        "-p",
        "VAL_FRACTION",
        "1.5",
        "--models",
        "mlp",
        "--runs-dir",
        str(tmp_path),
        "--quiet",
    )
    assert out.returncode == 1
    assert "02_preprocessing failed in cell [" in out.stderr
    assert "VAL_FRACTION must be between 0 and 1" in out.stderr
    (run_dir,) = tmp_path.iterdir()
    assert (run_dir / "02_preprocessing.ipynb").exists()
    assert (run_dir / "01_eda.ipynb").exists()  # earlier work is kept
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "failed" and record["failed_step"] == "02_preprocessing"

    # Resume the failed run in its own folder: finished steps are not recomputed.
    eda_mtime = (run_dir / "01_eda.ipynb").stat().st_mtime
    out = cli("run", "--profile", "smoke", "--models", "mlp", "--resume", str(run_dir), "--quiet")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "01_eda: already done, skipped" in out.stdout
    assert (run_dir / "01_eda.ipynb").stat().st_mtime == eda_mtime
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "done" and len(record["resumed"]) == 1
    assert [s["name"] for s in record["steps"]] == [
        "01_eda",
        "02_preprocessing",
        "03_training_mlp",
        "04_results",
        "05_presentation",
    ]
