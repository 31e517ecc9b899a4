"""The notebooks: conventions, papermill's parameter help, nbval's teeth, the JAX backend."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import nbformat
import numpy as np
import pytest
from sklearn.metrics import accuracy_score

from fmnist_lib import config, data, pipeline, preprocess

NOTEBOOKS = sorted(config.NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
# The project's kernel, as `make venv` installs it: every notebook declares it.
KERNEL_NAME, KERNEL_DISPLAY_NAME = "fmnist", "Python (fmnist)"
PARAM_LINE = re.compile(r"^[A-Z][A-Z0-9_]*: (int|float|str|bool) = [^=]+  # [^=]+$")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_conventions(path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    assert "**Reads:**" in first.source and "**Writes:**" in first.source
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged `parameters`"
    lines = [ln for ln in tagged[0].source.splitlines() if ln.strip()]
    assert lines and all(PARAM_LINE.match(ln) for ln in lines), lines
    assert any(ln.startswith("RUN_DIR: str") for ln in lines)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert "def " not in cell.source, "functions belong in fmnist_lib"
            assert "../" not in cell.source, "paths come from fmnist_lib.config"
    assert nb.metadata.kernelspec == {
        "name": KERNEL_NAME,
        "display_name": KERNEL_DISPLAY_NAME,
        "language": "python",
    }


def test_the_declared_kernel_is_the_one_make_installs():
    makefile = (config.PROJ_ROOT / "Makefile").read_text()
    assert f'--name {KERNEL_NAME} --display-name "{KERNEL_DISPLAY_NAME}"' in makefile


def test_batch_execution_keeps_the_committed_kernelspec(tmp_path):
    """Batch runs name their kernel (`pipeline.KERNEL`, the interpreter running them); neither
    papermill's copy nor nbclient's in-place execution (`reference.refresh_notebooks`) writes
    that name over the notebook's declared kernel."""
    import papermill
    from nbclient import NotebookClient

    source = tmp_path / "declared.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
    nb.metadata.kernelspec = {"name": KERNEL_NAME, "display_name": KERNEL_DISPLAY_NAME}
    nbformat.write(nb, source)
    papermill.execute_notebook(
        str(source), str(tmp_path / "copy.ipynb"), kernel_name=pipeline.KERNEL, progress_bar=False
    )
    in_place = nbformat.read(source, as_version=4)
    NotebookClient(in_place, kernel_name=pipeline.KERNEL).execute()
    for executed in (nbformat.read(tmp_path / "copy.ipynb", as_version=4), in_place):
        assert executed.cells[0].outputs[0].text == "42\n"  # it did run
        assert executed.metadata.kernelspec.name == KERNEL_NAME


def test_papermill_documents_parameters():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "papermill",
            "--help-notebook",
            str(config.NOTEBOOKS_DIR / "03_training.ipynb"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert re.search(r"EPOCHS: int \(default 3\)\s+training epochs", out.stdout)
    assert 'WEIGHTS: str (default "auto")' in out.stdout


@pytest.fixture
def tiny_run(tmp_path, real_ds):
    """A run folder with a small split, as 02_preprocessing would write it."""
    tr, va = data.stratified_split(real_ds.y_train[:1200], 0.25, seed=0)
    split = {"train": tr, "val": va, "test": np.arange(100)}
    preprocess.save_split(tmp_path, split, preprocess.Standardizer.fit(real_ds.x_train[tr]))
    return tmp_path


@pytest.mark.slow
def test_training_notebook_runs_on_the_jax_backend(tiny_run, monkeypatch):
    pytest.importorskip("jax")
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    # The accelerator recipe in miniature: small stem, augmentation in the step, SGD, EMA.
    recipe = {
        "MODEL": "resnet50",
        "TIME_INFERENCE": False,  # two more XLA compiles of ResNet50 on the CPU: 20 s
        "WEIGHTS": "none",
        "FINE_TUNE": "full",
        "STEM": "small",
        "IMAGE_SIZE": 28,
        "EPOCHS": 1,
        "BATCH_SIZE": 16,
        "TRAIN_LIMIT": 32,
        "VAL_LIMIT": 16,
        "VAL_EVERY": 1,
        "OPTIMIZER": "sgd",
        "LEARNING_RATE": 0.05,
        "EMA": 0.9,
        "BN_MOMENTUM": 0.9,
        "AUGMENT": "flip+shift:4+cutout:12",
        "TTA": True,
    }
    pipeline.execute(
        pipeline.Step("03_training", "03_training_resnet50", recipe), tiny_run, log_output=False
    )
    metrics = json.loads((tiny_run / "metrics.json").read_text())["training"]["resnet50"]
    assert metrics["device"]["keras_backend"] == "jax" and metrics["epochs"] == 1
    pred = np.load(tiny_run / "models" / "resnet50" / "predictions.npz")
    assert metrics["n"] == len(pred["y_true"]) == 100
    assert metrics["accuracy"] == pytest.approx(
        accuracy_score(pred["y_true"], pred["proba"].argmax(axis=1))
    )
    assert metrics["stem"] == "small" and metrics["train_config"]["ema"] == 0.9
    assert metrics["weights_label"] == "trained from random initialisation (not transfer)"
    history = json.loads((tiny_run / "models" / "resnet50" / "history.json").read_text())
    assert [row["epoch"] for row in history] == [0]


TIMINGS = {"train_seconds", "seconds", "checkpoint_seconds", "inference"}


def _without_timings(obj):
    if isinstance(obj, dict):
        return {k: _without_timings(v) for k, v in obj.items() if k not in TIMINGS}
    if isinstance(obj, list):
        return [_without_timings(v) for v in obj]
    return obj


@pytest.mark.slow
def test_the_same_seed_gives_the_same_metrics(tiny_run, tmp_path):
    """Two trainings with one seed on one machine agree to the last digit, timings aside:
    TensorFlow's op determinism, one `set_random_seed`, seeded NumPy augmentation."""
    results = []
    for copy in ("a", "b"):
        run_dir = tmp_path / copy
        run_dir.mkdir()
        shutil.copy(tiny_run / preprocess.SPLIT_FILE, run_dir)
        step = pipeline.Step(
            "03_training",
            "03_training_cnn",
            {"MODEL": "cnn", "EPOCHS": 1, "AUGMENT": "flip+shift+erase", "TTA": True},
        )
        pipeline.execute(step, run_dir, log_output=False)
        metrics = json.loads((run_dir / "metrics.json").read_text())["training"]["cnn"]
        history = json.loads((run_dir / "models" / "cnn" / "history.json").read_text())
        results.append(_without_timings({"metrics": metrics, "history": history}))
    assert results[0] == results[1]
    assert results[0]["metrics"]["accuracy"] > 0.1  # it did learn something


@pytest.mark.slow
def test_training_notebook_refuses_bad_weights_before_training(tiny_run, tmp_path):
    bad = tmp_path / "not_resnet.h5"
    bad.write_bytes(b"garbage")
    step = pipeline.Step(
        "03_training",
        "03_training_resnet50",
        {"MODEL": "resnet50", "WEIGHTS": str(bad), "FINE_TUNE": "frozen"},
    )
    with pytest.raises(pipeline.StepFailed, match="ModelConfigError.*not_resnet.h5"):
        pipeline.execute(step, tiny_run, log_output=False)
    assert not (tiny_run / "models" / "resnet50" / "head").exists()  # nothing trained


def test_the_sanitizer_masks_epoch_metrics_but_not_results():
    """nbval's sanitize file hides the CPU-dependent digits of Keras's epoch lines and nothing
    a run reports as a result."""
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(config.PROJ_ROOT / "tests" / "sanitize.cfg")

    def sanitized(text: str) -> str:
        for section in cfg.sections():
            text = re.sub(cfg[section]["regex"], cfg[section]["replace"], text)
        return text

    epoch = "422/422 - 6s - 15ms/step - accuracy: 0.8356 - loss: 0.4516 - val_accuracy: 0.8738"
    assert sanitized(epoch) == sanitized(epoch.replace("0.8738", "0.8752"))
    result = "mlp: test accuracy 89.72%, macro F1 0.897 on 10,000 test images"
    assert sanitized(result) == result
