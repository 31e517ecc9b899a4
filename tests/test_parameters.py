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
        ({"EPOCHS": "0"}, None, r"EPOCHS=0 must be in \[1, 1000\]"),
        ({"EPOCHS": "-1"}, None, r"EPOCHS=-1 must be in \[1, 1000\]"),
        ({"LEARNING_RATE": "-0.1"}, None, r"LEARNING_RATE=-0.1 must be in \(0, 1\]"),
        ({"BATCH_SIZE": "0"}, None, r"BATCH_SIZE=0 must be in \[1, 65536\]"),
        # Issue 23: values the code below would refuse only after work started.
        ({"SEED": "4294967296"}, None, r"SEED=4294967296 must be in \[0, 4294967295\]"),
        ({"N_TRAIN": "5"}, None, "N_TRAIN=5: a stratified subsample keeps one image of each"),
        ({"N_TRAIN": "59995"}, None, "N_TRAIN=59995: a stratified subsample keeps one image"),
        ({"N_TEST": "3"}, None, "N_TEST=3: a stratified subsample keeps one image of each"),
        ({"N_TRAIN": "50"}, None, "the split keeps 45 training and 5 validation images"),
        ({"VAL_FRACTION": "0.999"}, None, "the split keeps 2 training and 1998 validation"),
        ({"TRAIN_LIMIT": "3"}, None, "TRAIN_LIMIT=3: a stratified subsample keeps one image"),
        ({"N_IMAGES": "15"}, None, "N_IMAGES=15, FOLDS=2: every fold holds an image of each"),
        ({"LEARNING_RATE": "1e12"}, None, r"LEARNING_RATE=1000000000000.0 must be in \(0, 1\]"),
        ({"IMAGE_SIZE": "100000"}, None, r"IMAGE_SIZE=100000 must be in \[28, 224\]"),
        ({"BATCH_SIZE": "100000000"}, None, r"BATCH_SIZE=100000000 must be in \[1, 65536\]"),
        ({"SEED": "٣"}, None, "SEED: expected int, got '٣'"),
        ({"SEED": "3_0"}, None, "SEED: expected int, got '3_0'"),
        ({"LEARNING_RATE": "1_0e-3"}, None, "LEARNING_RATE: expected float, got '1_0e-3'"),
        ({"LEARNING_RATE": "٠.١"}, None, "LEARNING_RATE: expected float, got '٠.١'"),
        ({"AUGMENT": "FLIP"}, None, "unknown augmentation 'FLIP'"),
        ({"AUGMENT": "flip+"}, None, r"AUGMENT='flip\+': an empty part"),
        ({"AUGMENT": "flip+flip"}, None, "'flip' is given twice"),
        ({"AUGMENT": "shift:100000"}, None, "a whole number of pixels from 1 to 28"),
        ({"RUN_DIR": "/x"}, None, "RUN_DIR is set by the pipeline, not by -p"),
        ({"RESUME": "true"}, None, "RESUME is set by the pipeline, not by -p: use --resume"),
        ({}, [""], "--models '': empty name; leave --models out to run all"),
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
    edges = {"SEED": "4294967295", "N_TRAIN": "100", "LEARNING_RATE": "1", "N_IMAGES": "20"}
    steps = pipeline.plan("smoke", edges)
    assert {s.parameters["SEED"] for s in steps} == {4294967295}


@pytest.mark.parametrize("value", ["٣", "3_0", "0x10", "+ 3", "3.", "1e3", "Ⅲ", "３"])
def test_integers_are_ascii_decimal(value):
    with pytest.raises(
        parameters.ParameterError, match=re.escape(f"X: expected int, got {value!r}")
    ):
        parameters.coerce("X", value, "int")


@pytest.mark.parametrize("value", ["٣", "1_000.5", "0x1p-3", "١e3", "1e", "e3", "."])
def test_floats_are_ascii_decimal(value):
    with pytest.raises(parameters.ParameterError, match="X: expected float, got "):
        parameters.coerce("X", value, "float")


@pytest.mark.parametrize(
    "comment",
    [
        "epochs; at least 1,000",  # read as `at least 1` before
        "epochs; >= 1",
        "epochs; between 1 and 9",
        "model; one of mlp",
        "rate; in (0, 1",
        "rate; in [0, 1.5.2]",
        "images; at most 1e3x",
    ],
)
def test_a_constraint_that_is_not_checked_is_an_error_where_it_is_declared(comment):
    with pytest.raises(parameters.ParameterError, match=r"<cell>, line 1: A's comment has"):
        parameters.parse_cell(f"A: int = 1  # {comment}\n")


def test_recognised_constraints_and_plain_prose_are_declarations():
    cell = (
        "A: int = 1  # at least 1; in [1, 4294967295]\n"
        "B: float = 0.5  # at least this share of each; in (0, 1]\n"
        "C: int = 32  # side (32 or more; 28 with STEM small); at least 28\n"
        "D: str = 'a'  # one of a | b\n"
    )
    found = parameters.parse_cell(cell)
    assert found["A"].problems(0) == ["must be at least 1", "must be in [1, 4294967295]"]
    assert found["B"].problems(1.5) == ["must be in (0, 1]"]
    assert found["D"].choices == ("a", "b")


def test_every_notebook_declares_only_checked_constraints():
    for notebook in config.NOTEBOOKS:
        for spec in parameters.specs(notebook).values():
            assert not parameters.unrecognised_constraint(spec.help), (notebook, spec.name)


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
        # Issue 23: duplicate keys, anchors and aliases, and bytes that are not UTF-8.
        ("parameters:\n  SEED: 1\n  SEED: 2\n", r"line 3, column 3: .*duplicate key 'SEED'"),
        (
            "notebooks:\n  03_training:\n    - {MODEL: mlp, EPOCHS: 1, EPOCHS: 2}\n",
            r"line 3, column 31: .*duplicate key 'EPOCHS'",
        ),
        ("parameters:\n  SEED: &s 1\n", r"line 2, column 9: .*anchors and aliases"),
        (
            # 295 bytes that expanded to a 173 MB error message before
            "parameters:\n  SEED: "
            + "&a [x,x,x,x,x,x,x,x,x]\n"
            + "\n".join(
                f"  S{i}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]"
                for i in range(8)
            )
            + "\n",
            r"line 2, column 9: .*anchors and aliases",
        ),
        (b"parameters:\n  SEED: \xff\n", r"line 2, column 9: not UTF-8 \(byte 0xff\)"),
        ("parameters:\n  SEED: 0x10\n", "01_eda: SEED: expected int, got '0x10'"),
        ("parameters:\n  SEED: 3_0\n", "01_eda: SEED: expected int, got '3_0'"),
        ("notebooks:\n  03_training:\n    TTA: on\n", "TTA: expected bool .*got 'on'"),
        ("parameters:\n  RUN_DIR: /x\n", "RUN_DIR is set by the pipeline, not by profile"),
        ("# " + "x" * 65536 + "\n", "larger than 64 KiB"),
    ],
)
def test_malformed_profiles_exit_2_naming_the_file_and_line(params_dir, capsys, text, message):
    raw = text if isinstance(text, bytes) else text.encode()
    (params_dir / "broken.yaml").write_bytes(raw)
    assert main(["check", "--profile", "broken"]) == 2
    err = capsys.readouterr().err
    if "invalid parameters" in err:  # a value refused: one line per problem, then the table
        problems = [ln for ln in err.splitlines() if ln.startswith("  - ")]
        assert len(problems) >= 1 and re.search(message, "\n".join(problems)), err
        return
    assert len(err.strip().splitlines()) == 1, err  # one line, no traceback
    assert "broken.yaml" in err
    assert re.search(message, err), err
    assert len(err) < 1000  # the file and the line, not the expanded document


def test_yaml_types_only_what_the_command_line_reads(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("a: on\nb: 0x10\nc: 3_0\nd: true\ne: 1e-3\nf: 12\ng: null\nh: yes\n")
    assert pipeline.read_yaml(path, "profile") == {
        "a": "on",
        "b": "0x10",
        "c": "3_0",
        "d": True,
        "e": 0.001,
        "f": 12,
        "g": None,
        "h": "yes",  # a string, which a bool parameter reads as the command line does
    }


def test_run_with_an_empty_models_list_exits_2_instead_of_running_everything(monkeypatch, capsys):
    planned = []

    def fake_run(profile, overrides, models=None, notebooks=None, **_):
        planned.append(pipeline.plan(profile or "default", overrides, models, notebooks))

    monkeypatch.setattr(pipeline, "run_pipeline", fake_run)
    assert main(["run", "--profile", "smoke", "--models", ""]) == 2
    assert main(["run", "--profile", "smoke", "--notebooks", ""]) == 2
    assert not planned
    assert "--notebooks '': empty name" in capsys.readouterr().err


def test_malformed_sweep_grid_exits_2_naming_the_file(tmp_path, capsys):
    grid = tmp_path / "bad.yaml"
    grid.write_text("profile: smoke\nvary: {SEED: [1, 2]\n")
    assert main(["sweep", "--grid", str(grid)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml, line" in err and "not valid YAML" in err
    grid.write_text("profile: smoke\nvary:\n  SEED: [1, 2]\n  SEED: [3]\n")
    assert main(["sweep", "--grid", str(grid)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml, line 4, column 3: not valid YAML (duplicate key 'SEED')" in err, err


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
