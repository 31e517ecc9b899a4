"""Data loading: find, decompress, verify (MD5 of the raw IDX bytes) and parse all 70,000 images.

Usage: python benchmarks/bench_data.py [REPEATS]
Writes benchmarks/results/data.json with the machine it was measured on.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import stamp

from fmnist_lib import data

ROOT = Path(__file__).resolve().parents[1]


def main(repeats: int = 5) -> dict:
    load_before, times = list(os.getloadavg()), []
    for _ in range(repeats):
        start = time.perf_counter()
        ds = data.load_fashion_mnist(allow_download=False)
        times.append(time.perf_counter() - start)
    result = {
        "benchmark": "fmnist_lib.data.load_fashion_mnist: locate, gunzip, verify MD5s, parse IDX",
        "images": int(len(ds.y_train) + len(ds.y_test)),
        "source": ds.source,
        "seconds_median": round(statistics.median(times), 3),
        "seconds_all": [round(t, 3) for t in times],
    }
    result = stamp.measured(result, load_before)
    stamp.save("data", result)
    return result


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
