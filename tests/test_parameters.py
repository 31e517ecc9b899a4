"""fmnist_lib.parameters: typing as Python does, declared ranges, YAML faults, no TensorFlow."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from fmnist_lib import config, distribute, models, parameters, pipeline, train
from fmnist_lib.__main__ import main


@pytest.mark.parametrize(
    ("value", "type_name", "expected"),
    [
        ("3", "int", 3),
        ("0.5", "float", 0.5),
        ("2", "float", 2.0),
        ("3e-4", "float", 3e-4),
        ("true", "bool", True),
        ("False", "bool", False),
        ("cnn", "str", "cnn"),
        ("42", "str", "42"),
        (7, "int", 7),
    ],
)
def test_coerce_parses_as_python_does(value, type_name, expected):
    out = parameters.coerce("X", value, type_name)
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize(
    ("value", "type_name", "message"),
    [
        ("three", "int", "expected int"),
        ("1.5", "int", "expected int"),
        ("0x10", "int", "expected int"),
        ("maybe", "bool", "expected bool"),
        (True, "int", "expected int"),
        (1.5, "int", "expected int"),
        ("x", "float", "expected float"),
        ("0x10", "float", "expected float"),
        ("nan", "float", "expected a finite float"),
        (".inf", "float", "expected float"),
        (float("nan"), "float", "expected a finite float"),
        (float("-inf"), "float", "expected a finite float"),
        (3, "str", "expected str"),
        (1, "bool", "expected bool"),
    ],
)
def test_coerce_refuses_what_python_would_not_read(value, type_name, message):
    with pytest.raises(parameters.ParameterError, match=f"X: {message}"):
        parameters.coerce("X", value, type_name)


@pytest.mark.parametrize(
    ("overrides", "models", "message"),
    [
        ({"EPOCHS": "0"}, None, "EPOCHS=0 must be at least 1"),
        ({"EPOCHS": "-1"}, None, "EPOCHS=-1 must be at least 1"),
        ({"LEARNING_RATE": "-0.1"}, None, "LEARNING_RATE=-0.1 must be above 0"),
        ({"BATCH_SIZE": "0"}, None, "BATCH_SIZE=0 must be at least 1"),
        ({"VAL_FRACTION": "1.5"}, None, r"VAL_FRACTION=1.5 must be in \(0, 1\)"),
        ({"VAL_FRACTION": "0"}, None, r"VAL_FRACTION=0.0 must be in \(0, 1\)"),
        ({"LEARNING_RATE": ".nan"}, None, "LEARNING_RATE: expected float, got '.nan'"),
        ({"LEARNING_RATE": ".inf"}, None, "LEARNING_RATE: expected float, got '.inf'"),
        ({"EPOCHS": "0x10"}, None, "EPOCHS: expected int, got '0x10'"),
        ({"EMA": "1"}, None, r"EMA=1.0 must be in \[0, 1\)"),
        ({"MODEL": "vgg"}, None, "MODEL='vgg' must be one of mlp, cnn, resnet50"),
        ({"PRECISION": "bf16"}, None, "PRECISION='bf16' must be one of float32, mixed_bfloat16"),
        ({"STEM": "tiny"}, None, "STEM='tiny' must be one of imagenet, small"),
        ({"IMAGE_SIZE": "30"}, None, "IMAGE_SIZE=30: ResNet50 with STEM='imagenet' needs"),
        ({"AUGMENT": "flip+rotate"}, None, "unknown augmentation 'rotate'"),
        ({}, ["mpl"], "--models: 'mpl' is not a training run of profile smoke"),
    ],
)
def test_every_nonsense_value_is_refused_before_anything_runs(overrides, models, message):
    with pytest.raises(parameters.ParameterError, match=message):
        pipeline.plan("smoke", overrides, models)


def test_values_inside_the_declared_ranges_pass():
    steps = pipeline.plan("smoke", {"LEARNING_RATE": "3e-4", "VAL_FRACTION": "0.2"})
    training = [s for s in steps if s.notebook == "03_training"]
    assert all(s.parameters["LEARNING_RATE"] == 3e-4 for s in training)


def test_declared_choices_are_the_librarys():
    """The notebook's `one of` lists and the library's own constants must never drift."""
    declared = parameters.specs("03_training")
    assert declared["MODEL"].choices == models.MODELS
    assert declared["STEM"].choices == models.STEMS
    assert declared["FINE_TUNE"].choices == models.FINE_TUNE_STAGES
    assert declared["OPTIMIZER"].choices == train.OPTIMIZERS
    assert declared["PRECISION"].choices == distribute.PRECISIONS


def test_a_parameters_cell_that_is_not_declarations_is_refused():
    with pytest.raises(parameters.ParameterError, match="line 2: not a `NAME: type = value`"):
        parameters.parse_cell('A: int = 1  # a\nprint("x")\n')
    with pytest.raises(parameters.ParameterError, match="type must be one of"):
        parameters.parse_cell("A: list = []  # a\n")


def test_did_you_mean_names_the_closest_known_names_case_aside():
    known = ["EPOCHS", "LABEL_EPOCHS", "SEED", "default", "smoke"]
    assert parameters.did_you_mean("EPOCH", known) == "; did you mean 'EPOCHS'?"
    assert parameters.did_you_mean("SMOKE", known) == "; did you mean 'smoke'?"
    assert parameters.did_you_mean("epochs", known) == (
        "; did you mean 'EPOCHS' or 'LABEL_EPOCHS'?"  # closest first
    )
    assert parameters.did_you_mean("XYZZY", known) == ""


def test_an_unknown_notebook_parameter_gets_a_suggestion_from_that_notebook():
    _, errors = parameters.check("03_training", {"LEARNING_RAT": 0.1})
    assert errors == [
        "03_training: unknown parameter 'LEARNING_RAT'; did you mean 'LEARNING_RATE'?"
    ]


@pytest.fixture
def params_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "PARAMS_DIR", tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "notebooks:\n  01_eda: {\n  02: [\n",
            r"broken.yaml, line \d+, column \d+: not valid YAML",
        ),
        ("notebooks:\n  03_training: mlp\n", "notebooks.03_training must be a mapping or a list"),
        (
            "notebooks:\n  02_preprocessing: [1, 2]\n",
            "notebooks.02_preprocessing must be a mapping",
        ),
        ("- just\n- a list\n", "a profile is a mapping of keys to values, not a list"),
        ("parameters: 3\n", "`parameters` must be a mapping"),
    ],
)
def test_malformed_profiles_exit_2_naming_the_file_and_line(params_dir, capsys, text, message):
    (params_dir / "broken.yaml").write_text(text)
    assert main(["check", "--profile", "broken"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err  # one line, no traceback
    assert "broken.yaml" in err
    assert re.search(message, err), err


def test_malformed_sweep_grid_exits_2_naming_the_file(tmp_path, capsys):
    grid = tmp_path / "bad.yaml"
    grid.write_text("profile: smoke\nvary: {SEED: [1, 2]\n")
    assert main(["sweep", "--grid", str(grid)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml, line" in err and "not valid YAML" in err


def test_a_refusal_imports_neither_tensorflow_nor_keras():
    """Validation is plain Python: a refusal costs no TensorFlow start-up (nor its log lines)."""
    code = (
        "import sys; from fmnist_lib.__main__ import main; "
        "rc = main(['check', '--profile', 'smoke', '-p', 'NO_SUCH', '1']); "
        "print(rc, 'tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["2", "False", "False"], out.stdout + out.stderr
    assert "unknown parameter 'NO_SUCH'" in out.stderr
