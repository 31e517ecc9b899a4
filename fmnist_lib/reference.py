"""The reference run: one finished run, trimmed and committed under `reports/reference_run/`.

A newcomer reads the study there without running anything: the executed notebooks with their
figures, the deck and its PDF. The same folder is the fixture under which nbval re-executes
`04_results` and `05_presentation` (`tests/test_reference.py`), so the outputs committed in
`notebooks/` are the reference run's, checked number by number.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from fmnist_lib import config, records

REFERENCE_DIR = config.PROJ_ROOT / "reports" / "reference_run"
# Re-executed against the reference run, their outputs committed in notebooks/ and checked.
RESULT_NOTEBOOKS = ("04_results", "05_presentation")
# What a newcomer reads, and what 04 and 05 read back.
KEPT = (
    "*.ipynb",
    "run.json",
    "metrics.json",
    "monitor.json",
    "split.npz",
    "umap_*.npz",
    "occlusion.npz",
    "slides.html",
    "slides.pdf",
    "models/*/history.json",
    "models/*/predictions.npz",
)


class ReferenceError(RuntimeError):
    """The run cannot become the reference run; the message says why."""


def check_finished(run_dir: Path) -> dict:
    """The run's record, if the run finished every notebook; else a clear refusal."""
    try:
        record = records.read_json(run_dir / "run.json", None)
    except (OSError, ValueError) as exc:
        raise ReferenceError(f"{run_dir}: run.json is damaged or unreadable ({exc})") from None
    if not isinstance(record, dict):
        raise ReferenceError(f"{run_dir}: no run.json, so not a run folder of this project")
    if record.get("status") != "done":
        raise ReferenceError(
            f"{run_dir}: run status is {record.get('status')!r}; only a finished run "
            "('done') can be the reference"
        )
    if record.get("notebooks"):
        raise ReferenceError(
            f"{run_dir}: ran only {', '.join(record['notebooks'])}; the reference needs them all"
        )
    return record


def latest_done(runs_root: Path) -> Path:
    """The newest run folder under `runs_root` that finished every notebook."""
    for run_dir in sorted(runs_root.glob("*/run.json"), reverse=True):
        try:
            check_finished(run_dir.parent)
        except ReferenceError:
            continue
        return run_dir.parent
    raise ReferenceError(f"{runs_root}: no finished run to publish (run `make run` first)")


def publish(run_dir: str | os.PathLike[str], target: Path = REFERENCE_DIR) -> Path:
    """Copy what a reader needs from a finished run into `target` (replacing it): executed
    notebooks, records, deck, PNG figures, histories, predictions, and the best model."""
    run_dir = Path(run_dir).resolve()
    record = check_finished(run_dir)
    metrics = records.read_json(run_dir / "metrics.json", {})
    best = metrics.get("results", {}).get("best_model")
    if not best:
        raise ReferenceError(f"{run_dir}: metrics.json has no results.best_model (run 04)")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".reference-", dir=target.parent))
    try:
        for pattern in (*KEPT, f"models/{best}/model.keras"):
            for path in sorted(run_dir.glob(pattern)):
                dest = staging / path.relative_to(run_dir)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest)
        (staging / "README.md").write_text(describe(record, metrics))
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def describe(record: dict, metrics: dict) -> str:
    """The reference folder's README: which run, where, how long, and how to refresh it."""
    device = record.get("device", {})
    lines = [
        "# The reference run",
        "",
        f"Run `{record.get('run_id')}`, profile `{record.get('profile')}`, started "
        f"{record.get('started', '')[:16].replace('T', ' ')} UTC at commit "
        f"`{(record.get('git', {}).get('commit') or '?')[:10]}`"
        f"{' (uncommitted changes)' if record.get('git', {}).get('dirty') else ''}, on "
        f"{device.get('cpu') or '?'} ({device.get('cpu_count', '?')} cores), Keras backend "
        f"{device.get('keras_backend', '?')}: {record.get('seconds', 0) / 60:.1f} minutes for "
        f"{len(record.get('steps', []))} notebooks.",
        "",
        "| model | test accuracy | how it was trained |",
        "| --- | --- | --- |",
    ]
    for name, entry in metrics.get("training", {}).items():
        label = entry.get("weights_label") or "trained from scratch"
        lines.append(f"| {name} | {entry['accuracy']:.2%} | {label} |")
    lines += [
        "",
        "Read the executed notebooks in order (`01_eda.ipynb` … `05_presentation.ipynb`,",
        "figures embedded), or the deck: `slides.pdf`, or `slides.html` (offline; **S** opens",
        "the speaker notes). `metrics.json` and `run.json` are the run's records. Kept besides,",
        "for `04_results` and `05_presentation` to re-execute against (nbval,",
        "`tests/test_reference.py`): `split.npz`, the UMAP points, each model's history and test",
        "predictions, and the best model's `model.keras`. Refresh with `make reference` (a full",
        "`make run`, then `python -m fmnist_lib reference --latest`). This file is written by",
        "`fmnist_lib.reference.describe`.",
    ]
    return "\n".join(lines) + "\n"


def stage_as_interactive(reference: Path, runs_root: Path) -> Path:
    """A writable copy of the reference run where the notebooks' default `RUN_DIR` ("" ->
    `$FMNIST_RUNS_DIR/interactive`) finds it."""
    copy = runs_root / "interactive"
    shutil.copytree(reference, copy)
    return copy


def refresh_notebooks(reference: Path = REFERENCE_DIR) -> list[Path]:
    """Re-execute `notebooks/04_results` and `05_presentation` in place against a copy of the
    reference run, so that their committed outputs are the reference run's."""
    import nbformat
    from nbconvert.preprocessors import ExecutePreprocessor

    from fmnist_lib.pipeline import KERNEL, KERNEL_ARGUMENTS, quiet_kernel_manager

    written = []
    with tempfile.TemporaryDirectory(prefix="reference-runs-") as root:
        stage_as_interactive(reference, Path(root))
        previous = os.environ.get("FMNIST_RUNS_DIR")
        os.environ["FMNIST_RUNS_DIR"] = root  # the kernels inherit it
        try:
            for name in RESULT_NOTEBOOKS:
                path = config.NOTEBOOKS_DIR / f"{name}.ipynb"
                nb = nbformat.read(path, as_version=4)
                with open(Path(root) / f"{name}.kernel.log", "w") as log:
                    ExecutePreprocessor(
                        timeout=1800,
                        kernel_name=KERNEL,
                        kernel_manager_class=quiet_kernel_manager(log),
                        extra_arguments=KERNEL_ARGUMENTS,
                    ).preprocess(nb, {"metadata": {"path": str(config.NOTEBOOKS_DIR)}})
                nbformat.write(nb, path)
                written.append(path)
        finally:
            if previous is None:
                os.environ.pop("FMNIST_RUNS_DIR", None)
            else:
                os.environ["FMNIST_RUNS_DIR"] = previous
    return written
