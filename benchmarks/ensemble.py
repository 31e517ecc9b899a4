"""Goal 2 of the accelerator benchmarks: an ensemble of the ResNet50 recipe runs.

Usage: python benchmarks/ensemble.py PROBA.npy [PROBA.npy ...]
Averages the saved test-set probabilities (each already flip-TTA averaged by
bench_accelerator.py) and scores every member and the ensemble on the real test labels.
No test data is used in training or in choosing members: all runs made are included.
Writes benchmarks/results/accelerator/ensemble.json and keeps the inputs as compressed .npz.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np

from fmnist_lib import data

OUT = Path(__file__).resolve().parent / "results" / "accelerator"


def main(paths: list[str]) -> dict:
    y = data.load_fashion_mnist(allow_download=False).y_test
    probas = {Path(p).stem.removeprefix("proba_"): np.load(p) for p in paths}
    members = {name: float((p.argmax(1) == y).mean()) for name, p in probas.items()}
    mean = sum(probas.values()) / len(probas)
    result = {
        "benchmark": "ensemble of ResNet50 recipe runs (mean of flip-TTA probabilities)",
        "members_test_accuracy_tta": members,
        "ensemble_test_accuracy": float((mean.argmax(1) == y).mean()),
        "date": dt.date.today().isoformat(),
        "command": "python benchmarks/ensemble.py " + " ".join(Path(p).name for p in paths),
    }
    for name, p in probas.items():
        np.savez_compressed(OUT / f"proba_{name}.npz", proba=p)
    (OUT / "ensemble.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
