"""The committed reference run: 04_results and 05_presentation re-executed under nbval against
it reproduce their committed outputs, and a changed number in it makes nbval fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fmnist_lib import config, reference

NBVAL = [
    "--nbval",
    "--nbval-current-env",
    "--nbval-sanitize-with",
    str(config.PROJ_ROOT / "tests" / "sanitize.cfg"),
    "-p",
    "no:cacheprovider",
    "-q",
]

needs_reference = pytest.mark.skipif(
    not (reference.REFERENCE_DIR / "metrics.json").is_file(),
    reason="no reference run committed under reports/reference_run",
)


def nbval(runs_root: Path, *notebooks: str, first_failure: bool = False):
    """nbval on notebooks whose default run folder is `runs_root/interactive`; with
    `first_failure`, it stops at the first cell that differs."""
    paths = [str(config.NOTEBOOKS_DIR / f"{name}.ipynb") for name in notebooks]
    return subprocess.run(
        [sys.executable, "-m", "pytest", *NBVAL, *(["-x"] if first_failure else []), *paths],
        capture_output=True,
        text=True,
        cwd=config.PROJ_ROOT,
        env={**os.environ, "FMNIST_RUNS_DIR": str(runs_root)},
        timeout=1200,
    )


@needs_reference
@pytest.mark.slow
def test_results_and_presentation_reproduce_the_reference_run(tmp_path):
    reference.stage_as_interactive(reference.REFERENCE_DIR, tmp_path)
    out = nbval(tmp_path, *reference.RESULT_NOTEBOOKS)
    assert out.returncode == 0, out.stdout[-4000:]


@needs_reference
@pytest.mark.slow
def test_a_changed_number_in_the_reference_makes_nbval_fail(tmp_path):
    staged = reference.stage_as_interactive(reference.REFERENCE_DIR, tmp_path)
    metrics = json.loads((staged / "metrics.json").read_text())
    best = metrics["results"]["best_model"]
    metrics["training"][best]["accuracy"] -= 0.0001  # one number, one hundredth of a point
    (staged / "metrics.json").write_text(json.dumps(metrics))
    out = nbval(tmp_path, "05_presentation", first_failure=True)
    assert out.returncode != 0
    assert "failed" in out.stdout and "mismatch" in out.stdout.lower(), out.stdout[-4000:]
    assert f"{metrics['training'][best]['accuracy']:.2%}" in out.stdout  # the changed number


@needs_reference
def test_the_reference_is_a_finished_run_with_its_deck():
    record = reference.check_finished(reference.REFERENCE_DIR)
    assert record["status"] == "done"
    for name in ("slides.html", "slides.pdf", "04_results.ipynb", "01_eda.ipynb"):
        assert (reference.REFERENCE_DIR / name).is_file(), name
    notebook = json.loads((reference.REFERENCE_DIR / "01_eda.ipynb").read_text())
    images = [
        o
        for c in notebook["cells"]
        for o in c.get("outputs", [])
        if "image/png" in o.get("data", {})
    ]
    assert images, "the executed EDA notebook embeds its figures"


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (None, "no run.json"),
        ({"status": "failed"}, "run status is 'failed'"),
        ({"status": "done", "notebooks": ["02_preprocessing"]}, "ran only 02_preprocessing"),
    ],
)
def test_only_a_finished_full_run_can_become_the_reference(tmp_path, record, message):
    if record is not None:
        (tmp_path / "run.json").write_text(json.dumps(record))
    with pytest.raises(reference.ReferenceError, match=message):
        reference.publish(tmp_path, tmp_path / "out" / "reference_run")
    assert not (tmp_path / "out" / "reference_run").exists()


def test_latest_done_skips_unfinished_runs(tmp_path):
    for name, status in (("20260101-000000-a", "done"), ("20260102-000000-b", "failed")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.json").write_text(json.dumps({"status": status}))
    assert reference.latest_done(tmp_path).name == "20260101-000000-a"
    with pytest.raises(reference.ReferenceError, match="no finished run"):
        reference.latest_done(tmp_path / "20260102-000000-b")


@pytest.mark.parametrize("damage", [b"{not json", b"\xff\xfe"])
def test_a_damaged_run_record_is_refused_in_one_line(tmp_path, damage):
    """Issue 23: a damaged run.json was a JSONDecodeError/UnicodeDecodeError traceback."""
    run_dir = tmp_path / "runs" / "r"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_bytes(damage)
    with pytest.raises(reference.ReferenceError, match="run.json is damaged or unreadable"):
        reference.check_finished(run_dir)
    with pytest.raises(reference.ReferenceError, match="no finished run to publish"):
        reference.latest_done(tmp_path / "runs")
