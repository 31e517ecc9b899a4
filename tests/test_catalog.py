"""fmnist_lib.catalog and `python -m fmnist_lib runs`: the end-of-run summary, the run list."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fmnist_lib import catalog, config, pipeline

TRAINING = {
    "mlp": {"accuracy": 0.9045, "macro_f1": 0.9041, "train_seconds": 58.2},
    "cnn": {"accuracy": 0.9289, "macro_f1": 0.9287, "train_seconds": 525.0},
    "resnet50": {
        "accuracy": 0.8734,
        "macro_f1": 0.8731,
        "train_seconds": 171.4,
        "weights_used": "random",
        "fine_tune": "frozen",
        "weights_label": "frozen random features (control, not transfer)",
    },
}


def make_run(root: Path, name: str, training: dict | None = None, **fields) -> Path:
    """A run folder as `run_pipeline` leaves it: `run.json` and, if given, `metrics.json`."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    record = {"run_id": name, "profile": "default", "status": "done", "steps": [], **fields}
    (run_dir / "run.json").write_text(json.dumps(record))
    if training is not None:
        (run_dir / "metrics.json").write_text(json.dumps({"training": training}))
    return run_dir


# --- the summary a run ends with ----------------------------------------------------------


def test_summary_names_each_model_the_files_to_open_and_the_total_time(tmp_path):
    run_dir = make_run(tmp_path, "20261128-084746-default-4322c6", TRAINING)
    for name in ("slides.html", "04_results.ipynb"):
        (run_dir / name).write_text("")
    record = {"profile": "default", "seconds": 726.4, "resumed": [{"at": "..."}]}
    lines = catalog.summary_lines(run_dir, record)
    assert lines == [
        "fmnist: run 20261128-084746-default-4322c6 (profile default) done in 12.1 min"
        " over 2 sessions",
        "  model     test accuracy  macro F1  train time  weights used",
        "  mlp              90.45%     0.904        58 s  trained from scratch",
        "  cnn *            92.89%     0.929     8.8 min  trained from scratch",
        "  resnet50         87.34%     0.873     2.9 min  frozen random features (control, not"
        " transfer)",
        "  (* best test accuracy)",
        f"  slides.html        {run_dir / 'slides.html'}",
        f"  04_results.ipynb   {run_dir / '04_results.ipynb'}",
        f"  run folder         {run_dir}",
    ]
    (run_dir / "slides.pdf").write_text("")  # shown once it exists
    assert f"  slides.pdf         {run_dir / 'slides.pdf'}" in catalog.summary_lines(
        run_dir, record
    )


def test_summary_of_a_run_without_training_or_with_damaged_metrics(tmp_path):
    run_dir = make_run(tmp_path, "r")
    lines = catalog.summary_lines(run_dir, {"profile": "smoke", "seconds": 41})
    assert lines == [
        "fmnist: run r (profile smoke) done in 41 s",
        f"  run folder         {run_dir}",
    ]
    (run_dir / "metrics.json").write_text('{"training": [1]}')
    lines = catalog.summary_lines(run_dir, {"profile": "smoke", "seconds": 41})
    assert (
        lines[1]
        == f"  (no model table: {run_dir / 'metrics.json'} is not shaped as a run writes it)"
    )


def test_durations():
    assert [catalog.duration(s) for s in (None, 0.4, 89, 726, 5399, 7200)] == [
        "-",
        "0 s",
        "89 s",
        "12.1 min",
        "90.0 min",
        "2.0 h",
    ]


# --- the list of runs -------------------------------------------------------------------


@pytest.fixture
def runs_root(tmp_path) -> Path:
    """A runs/ folder holding one run of each status, and what else such a folder gathers."""
    root = tmp_path / "runs"
    steps = [{"name": "01_eda", "status": "done", "seconds": 40.0}]
    make_run(root, "a-done", TRAINING, started="2026-11-28T08:00:00", seconds=726.4)
    make_run(
        root,
        "b-failed",
        {"mlp": TRAINING["mlp"]},
        started="2026-11-28T09:00:00",
        status="failed",
        failed_step="03_training_cnn",
        steps=[*steps, {"name": "03_training_cnn", "status": "failed", "seconds": 2.5}],
    )
    make_run(
        root,
        "c-interrupted",
        started="2026-11-28T10:00:00",
        status="interrupted",
        interrupted_step="01_eda",
    )
    running = [*steps, {"name": "02_preprocessing", "status": "running"}]
    make_run(root, "d-killed", started="2026-11-28T11:00:00", status="running", steps=running)
    (root / "d-killed" / pipeline.LOCK_FILE).write_text("")  # left by a killed process
    (root / "d-killed" / pipeline.PID_FILE).write_text("999999\n")
    make_run(root, "e-live", started="2026-11-28T12:00:00", status="running", steps=running)
    make_run(root, "f-bad-metrics", started="2026-11-28T07:00:00").joinpath(
        "metrics.json"
    ).write_text("{")
    (root / "g-damaged").mkdir()
    (root / "g-damaged" / "run.json").write_text("{not json")
    (root / "h-foreign").mkdir()
    (root / "h-foreign" / "run.json").write_text("[1, 2]")
    # No record to date them: they sort by the folder's time, set before every start above
    # (left as created, they would sort by the hour the test runs).
    before = dt.datetime(2026, 11, 27).timestamp()
    for name in ("g-damaged", "h-foreign"):
        os.utime(root / name, (before, before))
    (root / "interactive").mkdir()  # the notebooks opened by hand: no run.json
    (root / "notes.txt").write_text("")
    return root


def test_runs_are_listed_newest_first_with_status_time_and_best_model(runs_root):
    with pipeline.run_lock(runs_root / "e-live"):  # a live process executing it
        entries, skipped = catalog.list_runs(runs_root)
    by_id = {e.id: e for e in entries}
    assert [e.id for e in entries if e.started] == [
        "e-live",
        "d-killed",
        "c-interrupted",
        "b-failed",
        "a-done",
        "f-bad-metrics",
    ]
    assert {e.id for e in entries[-2:]} == {"g-damaged", "h-foreign"}  # by the folder's time
    assert skipped == ["interactive", "notes.txt"]

    done = by_id["a-done"]
    assert (done.status, done.profile, done.seconds) == ("done", "default", 726.4)
    assert (done.best_model, done.accuracy) == ("cnn", 0.9289)
    failed = by_id["b-failed"]
    assert (failed.status, failed.note, failed.seconds) == ("failed", "in 03_training_cnn", 42.5)
    assert (failed.best_model, failed.accuracy) == ("mlp", 0.9045)
    assert by_id["c-interrupted"].note == "in 01_eda"
    assert (by_id["e-live"].status, by_id["e-live"].note) == ("running", "in 02_preprocessing")
    # Recorded as running, but no process holds its lock: it was killed.
    assert by_id["d-killed"].status == "interrupted"
    assert "its process is gone; finish it with --resume" in by_id["d-killed"].note
    assert by_id["f-bad-metrics"].status == "done"
    assert "metrics.json unreadable" in by_id["f-bad-metrics"].note
    assert by_id["g-damaged"].status == "damaged" and "line 1" in by_id["g-damaged"].note
    assert by_id["h-foreign"].status == "foreign"


def test_the_lock_probe_leaves_the_run_free(runs_root):
    run_dir = runs_root / "d-killed"
    assert catalog.lock_held(run_dir) is False
    with pipeline.run_lock(run_dir):  # the probe took nothing: the lock can still be taken
        assert catalog.lock_held(run_dir) is True
    assert catalog.lock_held(runs_root / "a-done") is False  # never locked: no lock file


def runs_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fmnist_lib", "runs", *args],
        cwd=config.PROJ_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_runs_command_prints_a_table_and_json(runs_root):
    out = runs_cli("--runs-dir", str(runs_root), "--limit", "3")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"runs in {runs_root}:"
    assert lines[1].split() == [
        "run",
        "profile",
        "status",
        "started",
        "wall",
        "time",
        "best",
        "accuracy",
        "note",
    ]
    assert lines[2].split()[:3] == ["e-live", "default", "interrupted"]  # nobody holds it now
    assert lines[-2:] == [
        "(3 of 8 runs shown; --limit 0 shows all)",
        "(skipped, no run.json: interactive, notes.txt)",
    ]

    out = runs_cli("--runs-dir", str(runs_root), "--json", "--limit", "0")
    assert out.returncode == 0, out.stderr
    listing = json.loads(out.stdout)
    assert listing["total"] == len(listing["runs"]) == 8
    done = next(r for r in listing["runs"] if r["id"] == "a-done")
    assert done == {
        "id": "a-done",
        "path": str(runs_root / "a-done"),
        "status": "done",
        "profile": "default",
        "started": "2026-11-28T08:00:00",
        "seconds": 726.4,
        "best_model": "cnn",
        "accuracy": 0.9289,
        "note": "",
    }
    assert " 12.1 min  cnn   " in runs_cli("--runs-dir", str(runs_root), "--limit", "0").stdout


def test_runs_command_on_a_fresh_clone_and_on_a_file(tmp_path):
    out = runs_cli("--runs-dir", str(tmp_path / "runs"))
    assert out.returncode == 0 and "no runs yet" in out.stdout, out.stderr
    (tmp_path / "a_file").write_text("")
    out = runs_cli("--runs-dir", str(tmp_path / "a_file"))
    assert out.returncode == 1
    assert out.stderr.strip() == f"fmnist: runs: cannot list {tmp_path / 'a_file'}: Not a directory"


@pytest.mark.parametrize(
    ("fields", "note"),
    [
        ({"started": 12345}, "run.json: 'started' is int 12345, not a string"),
        ({"profile": 5}, "run.json: 'profile' is int 5, not a string"),
        ({"steps": "all"}, "run.json: 'steps' is str 'all', not a list"),
        ({"steps": [{"name": "01_eda"}]}, "run.json: steps[0] has no 'status'"),
        ({"seconds": "long"}, "run.json: 'seconds' is str 'long', not a number"),
        ({"status": None}, "run.json: 'status' is NoneType None, not a string"),
    ],
)
def test_one_oddly_shaped_record_is_listed_damaged_and_the_others_still_shown(
    runs_root, fields, note
):
    """Issue 23: `"started": 12345` or `"profile": 5` crashed `runs`, which listed nothing."""
    make_run(runs_root, "z-odd", **{"started": "2026-11-29T08:00:00", **fields})
    out = runs_cli("--runs-dir", str(runs_root), "--limit", "0")
    assert out.returncode == 0 and not out.stderr, out.stderr
    rows = {line.split()[0]: line for line in out.stdout.splitlines()[2:] if line.strip()}
    assert "z-odd" in rows and " damaged " in rows["z-odd"] and rows["z-odd"].endswith(note)
    assert " done " in rows["a-done"]  # the others are listed as before
    (entry,) = [e for e in catalog.list_runs(runs_root)[0] if e.id == "z-odd"]
    assert (entry.status, entry.note, entry.profile, entry.started) == ("damaged", note, None, None)
