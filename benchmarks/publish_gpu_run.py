"""Publish a finished `gpu` profile run (fetched from the accelerator) as
`benchmarks/results/gpu_run/`, its deck re-made here.

Usage: python benchmarks/publish_gpu_run.py RUN_DIR HOW

The accelerator machine has no Chromium, so its run exports `slides.html` and skips the PDF.
Here, `05_presentation` is re-executed against a copy of the run folder with this checkout's
code (the numbers are the run's; only the talk's code is this commit's), the deck exported
and printed, and the folder trimmed as the reference run is (`reference.publish`). The README
there is written from the run's records; HOW says how the run was made (the device command).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import papermill

from fmnist_lib import config, records, reference, slides
from fmnist_lib.pipeline import KERNEL

TARGET = config.PROJ_ROOT / "benchmarks" / "results" / "gpu_run"


def readme(record: dict, metrics: dict, how: str) -> str:
    """The folder's README, every figure read from the run's records."""
    device = record.get("device", {})
    rows = [
        f"| {name} | {m['accuracy']:.2%} | {m['train_seconds']:.0f} s | "
        f"{m.get('weights_label') or 'trained from scratch'} |"
        for name, m in metrics.get("training", {}).items()
    ]
    steps = ", ".join(f"{s['name']} {s['seconds']:.0f} s" for s in record.get("steps", []))
    commit = (record.get("git", {}).get("commit") or "?")[:10]
    here = (records.git_state().get("commit") or "?")[:10]
    return (
        "\n".join(
            [
                "# The `gpu` profile on an accelerator: the accelerator reference run",
                "",
                f"Run `{record.get('run_id')}`: `python -m fmnist_lib run --profile gpu`, "
                f"executed by papermill on {device.get('device_kind', '?')} (Keras backend "
                f"{device.get('keras_backend', '?')}, {device.get('cpu_count', '?')} CPU cores), "
                f"with the code of commit `{commit}`, {how}. The {len(record.get('steps', []))} "
                f"notebooks took {record.get('seconds', 0) / 60:.1f} minutes: {steps}.",
                "",
                "| model | test accuracy | training | how it was trained |",
                "| --- | --- | --- | --- |",
                *rows,
                "",
                "What is here: the executed notebooks `01_eda` … `04_results` as the "
                "accelerator ran them; `metrics.json`, `run.json`, the histories, test "
                "predictions, label audit summary, monitor profile and occlusion maps of the "
                "run (model files left behind for size). `05_presentation.ipynb`, "
                "`slides.html` and `slides.pdf` were re-made on the 2-core CPU machine against "
                f"this run folder with the code of commit `{here}` (the accelerator machine "
                "has no Chromium for the PDF), by "
                "`benchmarks/publish_gpu_run.py`, which also wrote this file.",
            ]
        )
        + "\n"
    )


def main(run_dir: str, how: str) -> None:
    source = Path(run_dir).resolve()
    with tempfile.TemporaryDirectory(prefix="gpu-run-") as tmp:
        work = Path(tmp) / source.name
        shutil.copytree(source, work, ignore=shutil.ignore_patterns("*.keras"))
        papermill.execute_notebook(
            str(config.NOTEBOOKS_DIR / "05_presentation.ipynb"),
            str(work / "05_presentation.ipynb"),
            parameters={"RUN_DIR": str(work)},
            kernel_name=KERNEL,
            cwd=str(work),
            progress_bar=False,
        )
        deck = slides.export_deck(work / "05_presentation.ipynb", work / slides.DECK_FILE)
        slides.export_pdf(deck)
        target = reference.publish(work, TARGET)
    record = records.read_json(target / "run.json")
    metrics = records.read_json(target / "metrics.json")
    (target / "README.md").write_text(readme(record, metrics, how))
    print(f"published {source.name} to {target}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
