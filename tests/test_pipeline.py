"""fmnist_lib.pipeline and the command line: validation, run folders, end-to-end smoke run."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import accuracy_score, f1_score

from fmnist_lib import config, pipeline, records
from fmnist_lib.__main__ import build_parser, main

CLI = [sys.executable, "-m", "fmnist_lib"]


def cli(*args: str, cwd: Path = config.PROJ_ROOT, timeout: int = 900):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


# --- parameter validation -------------------------------------------------------------


def test_plan_expands_training_runs_and_applies_overrides():
    steps = pipeline.plan("smoke", {"EPOCHS": "4", "SEED": "7"})
    names = [s.name for s in steps]
    assert names == [
        "01_eda",
        "02_preprocessing",
        "03_label_errors",
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


def test_plan_suggests_a_name_on_error_and_points_to_the_listing():
    with pytest.raises(pipeline.ParameterError) as info:
        pipeline.plan("smoke", {"EPOCHZ": "3", "BATCH_SIZE": "big"})
    msg = str(info.value)
    assert "unknown parameter 'EPOCHZ'; did you mean 'EPOCHS'?" in msg
    assert "BATCH_SIZE: expected int, got 'big'" in msg
    assert "EPOCHS: int = 3" not in msg  # no dump of every parameter: `params` has it
    assert msg.endswith(pipeline.PARAMS_HINT) and len(msg.splitlines()) == 4, msg


def test_semantic_errors_are_caught_before_execution():
    with pytest.raises(pipeline.ParameterError, match="IMAGE_SIZE=16"):
        pipeline.plan("smoke", {"IMAGE_SIZE": "16"})
    with pytest.raises(pipeline.ParameterError, match="MODEL='vgg'"):
        pipeline.plan("smoke", {"MODEL": "vgg"}, models=None)
    with pytest.raises(pipeline.ParameterError, match="PRECISION='bf16'.*mixed_bfloat16"):
        pipeline.plan("smoke", {"PRECISION": "bf16"})


def test_unknown_profile():
    with pytest.raises(pipeline.ParameterError, match="unknown profile 'nope'.*default") as info:
        pipeline.plan("nope")
    assert "did you mean" not in str(info.value)
    with pytest.raises(pipeline.ParameterError, match="; did you mean 'smoke'[?]$"):
        pipeline.plan("smok")


def test_command_line_help_speaks_for_itself():
    """No "(issue 7)": help names what a command does, not the history of the project."""
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for text in [parser.format_help(), *(c.format_help() for c in commands.choices.values())]:
        assert not re.search(r"\bissues? #?\d+", text, re.IGNORECASE), text


def test_params_with_a_profile_shows_the_values_it_runs_with(tmp_path, monkeypatch, capsys):
    (tmp_path / "mine.yaml").write_text(
        "parameters: {SEED: 7}\n"
        "notebooks:\n  03_training: [{MODEL: cnn, EPOCHS: 5}, {MODEL: mlp}]\n"
    )
    monkeypatch.setattr(config, "PARAMS_DIR", tmp_path)
    assert main(["params", "--profile", "mine"]) == 0
    out = capsys.readouterr().out
    blocks: dict[str, str] = {}
    step = ""
    for line in out.splitlines()[1:]:
        if line.startswith("    "):
            blocks[step] += line + "\n"
        else:
            step = line.strip().rstrip(":")
            blocks[step] = ""
    assert list(blocks) == [
        *config.NOTEBOOKS[:3],
        "03_training_cnn",
        "03_training_mlp",
        *config.NOTEBOOKS[4:],
    ]
    assert "    EPOCHS: int = 5  # training epochs" in blocks["03_training_cnn"]
    assert "(profile; default 3)" in blocks["03_training_cnn"]
    (mlp_epochs,) = [
        ln for ln in blocks["03_training_mlp"].splitlines() if ln.startswith("    EPOCHS:")
    ]
    assert mlp_epochs.startswith("    EPOCHS: int = 3  # training epochs")  # the default
    assert "(profile" not in mlp_epochs
    assert re.search(r"    SEED: int = 7 .*\(profile; default 42\)", blocks["01_eda"])
    assert main(["params", "--profile", "mnie"]) == 2
    assert "did you mean 'mine'?" in capsys.readouterr().err


def test_every_profile_is_valid():
    for path in sorted(config.PARAMS_DIR.glob("*.yaml")):
        assert pipeline.plan(path.stem), path


def test_cli_refuses_bad_parameter_before_executing(tmp_path):
    out = cli("run", "--profile", "smoke", "-p", "EPOCHS", "two", "--runs-dir", str(tmp_path))
    assert out.returncode == 2, out.stderr
    assert "EPOCHS: expected int, got 'two'" in out.stderr
    assert pipeline.PARAMS_HINT in out.stderr and "LEARNING_RATE: float" not in out.stderr
    assert list(tmp_path.iterdir()) == []  # nothing was executed or created


# --- run folders ----------------------------------------------------------------------


def test_run_folders_are_never_shared(tmp_path):
    with ThreadPoolExecutor(8) as pool:
        dirs = list(pool.map(lambda _: pipeline.new_run_dir("smoke", tmp_path), range(64)))
    assert len(set(dirs)) == 64 and all((d / "figures").is_dir() for d in dirs)


# --- end to end -------------------------------------------------------------------------


# Start-up messages known to be harmless, which the console of a run must not show.
HARMLESS = (
    "Kernel is running over TCP without encryption",  # ipykernel, when not given Curve keys
    "All log messages before absl::InitializeLog() is called",  # TensorFlow's C++ start-up
    "oneDNN custom operations are on",
    "This TensorFlow binary is optimized to use available CPU instructions",
)


@pytest.mark.slow
def test_smoke_run_console_holds_what_a_user_reads(smoke_run):
    run_dir, stdout, stderr = smoke_run
    assert [msg for msg in HARMLESS if msg in stdout + stderr] == []
    lines = stdout.splitlines()  # cell output: no blank line after each print
    epoch = next(i for i, line in enumerate(lines) if "03_training_mlp | Epoch 1/" in line)
    assert lines[epoch + 1].startswith("    03_training_mlp | "), lines[epoch : epoch + 3]
    assert "Total params" not in stdout  # Keras's model summary stays in the notebook
    # Encrypted kernel sockets: not even the kernel logs hold the plain-TCP warning.
    for log in (run_dir / "logs").glob("*.kernel.log"):
        assert HARMLESS[0] not in log.read_text(), log
    # It ends with the summary: a line per model, where to look, and the total time.
    summary = stdout[stdout.index(f"fmnist: run {run_dir.name} (profile smoke) done in") :]
    assert re.search(
        r"\n  cnn( \*)? +\d+\.\d\d% +0\.\d{3} +\S+ (s|min) +trained from scratch\n", summary
    )
    assert re.search(r"\n  resnet50( \*)? +\d+\.\d\d% .*(random|ImageNet)", summary)
    for name in ("slides.html", "04_results.ipynb"):
        assert f"  {name:<18} {run_dir / name}\n" in summary
    assert summary.endswith(f"  run folder         {run_dir}\n")


@pytest.mark.slow
def test_smoke_run_leaves_every_artifact(smoke_run, real_ds):
    run_dir, stdout, _ = smoke_run
    notebooks = sorted(p.name for p in run_dir.glob("*.ipynb"))
    assert notebooks == [
        "01_eda.ipynb",
        "02_preprocessing.ipynb",
        "03_label_errors.ipynb",
        "03_training_cnn.ipynb",
        "03_training_mlp.ipynb",
        "03_training_resnet50.ipynb",
        "04_results.ipynb",
        "05_presentation.ipynb",
    ]
    assert "[8/8] 05_presentation: done in" in stdout
    deck = (run_dir / "slides.html").read_text()
    assert "https://" not in deck and "Reveal.initialize" in deck
    for name in (
        "eda_class_distribution",
        "results_training_curves",
        "results_confusion_best",
        "results_predictions",
        "slide_system",
        "slide_headline",
        "slide_label_errors",
        "slide_occlusion",
        "slide_cost",
        "label_errors_suspects",
    ):
        png = run_dir / "figures" / f"{name}.png"
        dpi = Image.open(png).info["dpi"][0]
        assert dpi >= 149, (png, dpi)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["training"]) == {"mlp", "cnn", "resnet50"}
    assert metrics["eda"]["data_md5"] == real_ds.md5s()
    for name, m in metrics["training"].items():
        # The recorded scores are the saved predictions' own, computed again by scikit-learn,
        # on the real test labels of the images they name.
        pred = np.load(run_dir / "models" / name / "predictions.npz")
        assert np.array_equal(pred["y_true"], real_ds.y_test[pred["test_index"]])
        assert m["n"] == len(pred["y_true"]) == 500
        guess = pred["proba"].argmax(axis=1)
        assert m["accuracy"] == pytest.approx(accuracy_score(pred["y_true"], guess))
        assert m["macro_f1"] == pytest.approx(f1_score(pred["y_true"], guess, average="macro"))
    assert metrics["training"]["resnet50"]["weights_used"] in {"imagenet", "random"}
    assert metrics["results"]["best_model"] in metrics["training"]
    # The label audit, the occlusion maps and the monitor's profile the deck and predict read.
    audit = metrics["label_errors"]
    assert (
        audit["n_images"] == 1000 and 0 <= audit["rate_low"] <= audit["rate"] <= audit["rate_high"]
    )
    assert np.load(run_dir / "label_errors.npz")["probs"].shape == (1000, 10)
    assert metrics["results"]["explain"]["model"] == metrics["results"]["best_model"]
    assert (run_dir / "occlusion.npz").is_file() and (run_dir / "monitor.json").is_file()


@pytest.mark.slow
def test_smoke_run_record(smoke_run, real_ds):
    run_dir, _, _ = smoke_run
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "done" and record["profile"] == "smoke"
    assert record["data"]["files"]["train_images"]["md5"] == real_ds.md5s()["train_images"]
    assert record["versions"]["keras"] and record["versions"]["papermill"]
    assert len(record["git"]["commit"] or "") == 40
    assert record["device"]["keras_backend"] == "tensorflow"
    assert [s["status"] for s in record["steps"]] == ["done"] * 8
    assert record["slides"] == "slides.html"
    assert all(s["seconds"] > 0 for s in record["steps"])
    assert record["parameters"]["03_training_mlp"]["BATCH_SIZE"] == 128  # defaults recorded


@pytest.mark.slow
def test_failed_notebook_is_kept_named_and_resumed_as_recorded(tmp_path):
    # A file that passes the plan's checks (it exists, it ends in .h5) but holds no weights:
    # 02 runs, then 03 fails inside, when Keras opens the file.
    weights = tmp_path / "not_weights.h5"
    weights.write_bytes(b"not an HDF5 file")
    args = ["--profile", "smoke", "--notebooks", "02_preprocessing,03_training"]
    args += ["--models", "resnet50", "-p", "WEIGHTS", str(weights), "--quiet"]
    runs = tmp_path / "runs"
    out = cli("run", *args, "--runs-dir", str(runs))
    assert out.returncode == 1
    assert "03_training_resnet50 failed in cell [" in out.stderr, out.stderr[-3000:]
    (run_dir,) = runs.iterdir()
    assert (run_dir / "03_training_resnet50.ipynb").exists()
    assert (run_dir / "02_preprocessing.ipynb").exists()  # earlier work is kept
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "failed" and record["failed_step"] == "03_training_resnet50"

    # A resume re-plans from run.json: its profile, override, models and notebooks.
    done_mtime = (run_dir / "02_preprocessing.ipynb").stat().st_mtime
    out = cli("run", "--resume", str(run_dir), "--quiet")
    assert out.returncode == 1, out.stderr[-3000:]
    assert "02_preprocessing: already done, skipped" in out.stdout
    assert (run_dir / "02_preprocessing.ipynb").stat().st_mtime == done_mtime
    record = json.loads((run_dir / "run.json").read_text())
    assert record["profile"] == "smoke" and len(record["resumed"]) == 1
    assert record["parameters"]["03_training_resnet50"]["WEIGHTS"] == str(weights)
    assert list(record["parameters"]) == ["02_preprocessing", "03_training_resnet50"]


def _recorded_run(run_dir: Path, **fields) -> Path:
    """A run folder whose record says how it was started, as `run_pipeline` writes it."""
    run_dir.mkdir(parents=True)
    record = {
        "run_id": run_dir.name,
        "profile": "smoke",
        "overrides": {"SEED": "7"},
        "models": ["mlp"],
        "notebooks": ["02_preprocessing"],
        "status": "failed",
        "steps": [],
        "parameters": {},
        **fields,
    }
    (run_dir / "run.json").write_text(json.dumps(record))
    return run_dir


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--profile", "default"], "recorded with --profile 'smoke', not 'default'"),
        (["-p", "EPOCHS", "20"], "recorded with -p {'SEED': '7'}, not {'EPOCHS': '20'}"),
        (["--models", "cnn"], "recorded with --models ['mlp'], not ['cnn']"),
        (
            ["--notebooks", "01_eda"],
            "recorded with --notebooks ['02_preprocessing'], not ['01_eda']",
        ),
    ],
)
def test_resume_refuses_a_different_profile_override_models_or_notebooks(tmp_path, flags, message):
    run_dir = _recorded_run(tmp_path / "r")
    out = cli("run", "--resume", str(run_dir), *flags)
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_resume_replans_from_the_record(tmp_path):
    run_dir = _recorded_run(tmp_path / "r")
    out = cli("run", "--resume", str(run_dir), "--quiet")  # no --profile: smoke, as recorded
    assert out.returncode == 0, out.stderr[-3000:]
    assert "fmnist: run r (profile smoke) done in" in out.stdout  # the summary, after a resume
    assert "over 2 sessions" in out.stdout
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "done" and list(record["parameters"]) == ["02_preprocessing"]
    assert record["parameters"]["02_preprocessing"]["N_TRAIN"] == 2000  # smoke's, not default's
    assert record["parameters"]["02_preprocessing"]["SEED"] == 7  # the recorded override


def test_the_command_line_shows_progress_on_stdout_as_plain_lines(tmp_path):
    done = {"name": "02_preprocessing", "notebook": "02_preprocessing.ipynb", "status": "done"}
    run_dir = _recorded_run(tmp_path / "r", steps=[{**done, "seconds": 4.0}])
    out = cli("run", "--resume", str(run_dir))  # nothing left to execute: progress only
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert lines[:2] == [
        f"fmnist: run folder {run_dir}",
        "[1/1] 02_preprocessing: already done, skipped",
    ]
    assert re.fullmatch(r"fmnist: run r \(profile smoke\) done in \d+ s over 2 sessions", lines[2])
    assert lines[3:] == [f"  run folder         {run_dir}"]  # the summary ends the output
    assert "already done" not in out.stderr


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("{not json", "run.json is damaged (Expecting property name"),
        ("[1, 2]", "run.json is not a run record of this project"),
        # Issue 23: each of these was a traceback, or "no run.json there".
        ("null", "run.json is not a run record of this project"),
        (b"\x89PNG\r\n\x1a\n\xff\xfe\x00", "run.json is damaged (not UTF-8 text, byte 0)"),
        ('{"profile": "smoke", "status": "failed"}', "run.json is damaged (no 'steps')"),
        (
            '{"profile": "smoke", "status": "failed", "steps": [{"name": "01_eda"}]}',
            "run.json is damaged (steps[0] has no 'status')",
        ),
        (
            '{"profile": "smoke", "status": "failed", "steps": [], "overrides": "SEED=1"}',
            "run.json is damaged ('overrides' is str 'SEED=1', not a mapping or null)",
        ),
        (
            '{"profile": 5, "status": "failed", "steps": []}',
            "run.json is damaged ('profile' is int 5, not a string)",
        ),
    ],
)
def test_a_damaged_record_is_refused_in_one_line(tmp_path, damage, message):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    raw = damage if isinstance(damage, bytes) else damage.encode()
    (run_dir / "run.json").write_bytes(raw)
    out = cli("run", "--resume", str(run_dir))
    assert out.returncode == 1 and message in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_a_folder_without_a_record_is_not_a_run(tmp_path, capsys):
    assert main(["run", "--resume", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"fmnist: error: --resume {tmp_path}: no run.json there\n"


def test_a_run_folder_that_cannot_be_locked_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    """A read-only folder (filelock's OSError was a traceback); planted, since root may write
    anywhere."""
    import filelock

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(tmp_path / "r" / ".run.lock"))

    run_dir = _recorded_run(tmp_path / "r")
    monkeypatch.setattr(filelock.FileLock, "acquire", read_only)
    assert main(["run", "--resume", str(run_dir)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"fmnist: error: {run_dir}: cannot lock the run folder (Read-only file system); "
        "a run is executed in a folder it can write to\n"
    )


def _planted_steps(tmp_path: Path, fault) -> tuple:
    """A run folder, its record, and two steps whose second runs `fault` instead of papermill."""
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    record = {"run_id": "r", "profile": "smoke", "status": "running", "steps": []}
    steps = [pipeline.Step("01_eda", "01_eda"), pipeline.Step("02_preprocessing", "02_pre")]

    def execute(step, run_dir, log_output=True):
        if step.name == "02_pre":
            fault(run_dir)
        return 1.0

    return run_dir, record, steps, execute


def test_an_os_error_mid_run_is_recorded_failed_with_the_error(tmp_path, monkeypatch):
    """A full disk under papermill (ENOSPC) was a traceback and left run.json `running`."""

    def disk_full(run_dir):
        path = str(run_dir / "02_pre.ipynb")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)

    run_dir, record, steps, execute = _planted_steps(tmp_path, disk_full)
    monkeypatch.setattr(pipeline, "execute", execute)
    with pytest.raises(pipeline.RunError) as info:
        pipeline.execute_steps(steps, run_dir, record, log_output=False)
    error = f"02_pre stopped by an OS error: No space left on device ({run_dir / '02_pre.ipynb'})"
    assert str(info.value) == (
        f"{error}; recorded in {run_dir / 'run.json'}; fix it, then finish the run with "
        f"--resume {run_dir}"
    )
    saved = json.loads((run_dir / "run.json").read_text())
    assert (saved["status"], saved["failed_step"], saved["error"]) == ("failed", "02_pre", error)
    assert [(s["name"], s["status"]) for s in saved["steps"]] == [
        ("01_eda", "done"),
        ("02_pre", "failed"),
    ]
    assert pipeline.exit_code(info.value) == 1


def test_a_full_disk_that_refuses_the_temporary_record_is_recorded_in_place(tmp_path, monkeypatch):
    """On a full disk the atomic write's temporary file fails too: the record is rewritten in
    place, since truncating it frees the room the new text needs."""

    def disk_full(run_dir):
        def no_room(path, obj):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(records, "write_json", no_room)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    run_dir, record, steps, execute = _planted_steps(tmp_path, disk_full)
    monkeypatch.setattr(pipeline, "execute", execute)
    with pytest.raises(pipeline.RunError, match="recorded in .*run.json; fix it"):
        pipeline.execute_steps(steps, run_dir, record, log_output=False)
    saved = json.loads((run_dir / "run.json").read_text())
    assert saved["status"] == "failed" and saved["steps"][1]["status"] == "failed"


def test_sigterm_is_handled_as_ctrl_c(tmp_path, monkeypatch, capsys):
    """An external SIGTERM left the run recorded `running`; now it is `interrupted`, resumable,
    and the command exits 143 with one line."""

    def terminated(run_dir):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends

    run_dir, record, steps, execute = _planted_steps(tmp_path, terminated)
    monkeypatch.setattr(pipeline, "execute", execute)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(pipeline.Terminated) as info, pipeline.sigterm_as_interrupt():
        pipeline.execute_steps(steps, run_dir, record, log_output=False)
    assert signal.getsignal(signal.SIGTERM) == before  # restored
    saved = json.loads((run_dir / "run.json").read_text())
    assert (saved["status"], saved["interrupted_step"]) == ("interrupted", "02_pre")
    assert pipeline.exit_code(info.value) == 143
    assert capsys.readouterr().err == (
        f"fmnist: terminated (SIGTERM): 02_pre was running; finish the run with --resume "
        f"{run_dir}\n"
    )


def test_an_unusable_runs_folder_is_refused_in_one_line(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    out = cli("run", "--profile", "smoke", "--runs-dir", str(blocker / "runs"))
    assert out.returncode == 1, out.stderr
    assert "cannot create a run folder under" in out.stderr and "a_file" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_a_run_folder_has_one_writer(tmp_path):
    run_dir = _recorded_run(tmp_path / "r")
    with pipeline.run_lock(run_dir):
        out = cli("run", "--resume", str(run_dir))
    assert out.returncode == 2, out.stderr
    assert f"run r is being executed by pid {os.getpid()}" in out.stderr
    assert not (run_dir / pipeline.PID_FILE).exists()  # released with the lock


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path, caplog):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / pipeline.LOCK_FILE).write_text("")
    (tmp_path / pipeline.PID_FILE).write_text(f"{dead.pid}\n")
    with pipeline.run_lock(tmp_path):
        assert (tmp_path / pipeline.PID_FILE).read_text().strip() == str(os.getpid())
    (record,) = caplog.records
    assert record.name == "fmnist_lib.pipeline" and record.levelno == logging.WARNING
    assert f"taking over the lock of pid {dead.pid}, which is no longer" in record.getMessage()


@pytest.fixture
def console():
    """`log_to_console` as the command line calls it, undone after the test."""
    yield config.log_to_console
    logger = logging.getLogger("fmnist_lib")
    for handler in [h for h in logger.handlers if h.get_name() == config.CONSOLE_HANDLER]:
        logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)


def test_progress_reaches_stdout_as_plain_lines_once(console, capsys):
    console()
    console()  # a second set-up (main called twice in one process) replaces the first
    progress = logging.getLogger("fmnist_lib.pipeline")
    progress.info("[1/2] 01_eda: done in %.1f s", 3.14)
    progress.debug("not shown")
    out = capsys.readouterr()
    assert (out.out, out.err) == ("[1/2] 01_eda: done in 3.1 s\n", "")
    console(logging.WARNING)  # quieter: warnings only
    progress.info("hidden")
    progress.warning("fmnist: shown")
    assert capsys.readouterr().out == "fmnist: shown\n"


@pytest.mark.slow
def test_ctrl_c_marks_the_run_interrupted_and_exits_130(tmp_path):
    proc = subprocess.Popen(
        [
            *CLI,
            "run",
            "--profile",
            "smoke",
            "--models",
            "mlp",
            "--quiet",
            "--runs-dir",
            str(tmp_path),
        ],
        cwd=config.PROJ_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        start_new_session=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until the first notebook is running
        runs = list(tmp_path.iterdir())
        record = runs and (runs[0] / "run.json").exists() and pipeline.read_record(runs[0])
        if record and record["steps"]:
            break
        time.sleep(0.2)
    time.sleep(2)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == [
        f"fmnist: interrupted: 01_eda was running; finish the run with --resume {runs[0]}"
    ]
    record = pipeline.read_record(runs[0])
    assert record["status"] == "interrupted" and record["interrupted_step"] == "01_eda"


@pytest.mark.slow
def test_sigterm_marks_a_real_run_interrupted_and_exits_143(tmp_path):
    """SIGTERM to the command alone (as `kill PID` or a scheduler sends it), not its group."""
    proc = subprocess.Popen(
        [*CLI, "run", "--profile", "smoke", "--notebooks", "01_eda", "--quiet"]
        + ["--runs-dir", str(tmp_path)],
        cwd=config.PROJ_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        start_new_session=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until the notebook is running
        runs = list(tmp_path.iterdir())
        record = runs and (runs[0] / "run.json").exists() and pipeline.read_record(runs[0])
        if record and record["steps"]:
            break
        time.sleep(0.2)
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert err.strip().splitlines() == [
        f"fmnist: terminated (SIGTERM): 01_eda was running; finish the run with --resume {runs[0]}"
    ]
    record = pipeline.read_record(runs[0])
    assert record["status"] == "interrupted" and record["interrupted_step"] == "01_eda"


def test_records_are_created_with_the_umask_mode(tmp_path):
    old = os.umask(0o022)
    try:
        path = records.write_json(tmp_path / "run.json", {"a": 1})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600


def test_the_console_shows_what_cells_print_not_what_they_display(tmp_path, monkeypatch, capsys):
    """A model summary is displayed (rich output): it stays in the executed notebook."""
    import nbformat

    v4 = nbformat.v4
    cells = [
        v4.new_code_cell('RUN_DIR: str = ""  # run folder', metadata={"tags": ["parameters"]}),
        v4.new_code_cell(
            "from IPython.display import display\n"
            "import sys\n"
            "print('epoch 1/2 - loss 0.5', end='')\n"
            "print(' - accuracy 0.8')\n"
            "display({'text/plain': 'Total params: 1,234 SUMMARY'}, raw=True)\n"
            "print('warned', file=sys.stderr)\n"
            "print('open line', end='')\n"
        ),
        v4.new_code_cell("'a displayed value, SHOWN-ONLY-IN-THE-NOTEBOOK'"),
    ]
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    kernelspec = {"name": "fmnist", "display_name": "Python (fmnist)", "language": "python"}
    notebook = v4.new_notebook(cells=cells, metadata={"kernelspec": kernelspec})
    nbformat.write(notebook, notebooks / "printer.ipynb")
    monkeypatch.setattr(config, "NOTEBOOKS_DIR", notebooks)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    pipeline.execute(pipeline.Step("printer", "printer"), run_dir)
    out = capsys.readouterr().out
    assert "    printer | epoch 1/2 - loss 0.5 - accuracy 0.8\n" in out  # one line, as printed
    assert "    printer | warned\n" in out and "    printer | open line\n" in out
    assert "SUMMARY" not in out and "SHOWN-ONLY" not in out
    executed = nbformat.read(run_dir / "printer.ipynb", as_version=4)
    shown = json.dumps([o for c in executed.cells for o in c.get("outputs", [])])
    assert "Total params: 1,234 SUMMARY" in shown and "SHOWN-ONLY-IN-THE-NOTEBOOK" in shown
