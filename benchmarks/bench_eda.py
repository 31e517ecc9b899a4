"""Time notebooks/01_eda.ipynb end to end on the full data, executed by papermill.

    .venv/bin/python benchmarks/bench_eda.py

The notebook runs with its default parameters into a temporary run folder (parameter
RUN_DIR), kernel start-up included. The result goes to benchmarks/results/eda.json with
a description of the machine, because the number means little without it.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import papermill
import stamp

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "01_eda.ipynb"
BUDGET_S = 90  # issue 3: the whole notebook on the full data within 90 s on 2 CPU cores
FULL_DATA = 70_000


def run() -> dict:
    """Execute the notebook once and return the timing record."""
    load_before = list(os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="bench-eda-") as tmp:
        start = time.perf_counter()
        papermill.execute_notebook(
            str(NOTEBOOK),
            str(Path(tmp) / NOTEBOOK.name),
            parameters={"RUN_DIR": tmp},
            cwd=str(NOTEBOOK.parent),
            progress_bar=False,
        )
        seconds = time.perf_counter() - start
        eda = json.loads((Path(tmp) / "metrics.json").read_text())["eda"]
    n_images = eda["n_train"] + eda["n_test"]
    if n_images != FULL_DATA:
        raise RuntimeError(f"the notebook saw {n_images} images, not the full {FULL_DATA}")
    result = {
        "benchmark": "notebooks/01_eda.ipynb, default parameters, papermill, kernel start included",
        "seconds": round(seconds, 2),
        "budget_seconds": BUDGET_S,
        "within_budget": seconds <= BUDGET_S,
        "images": n_images,
    }
    return stamp.measured(result, load_before)


def main() -> None:
    result = run()
    path = stamp.save("eda", result)
    print(f"{result['seconds']:.1f} s (budget {BUDGET_S} s) -> {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
