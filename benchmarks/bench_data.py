"""Data loading: find, decompress, verify (MD5 of the raw IDX bytes) and parse all 70,000 images.

Usage: python benchmarks/bench_data.py [REPEATS]
Writes benchmarks/results/data.json with the machine it was measured on.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path

from fmnist_lib import data, records

ROOT = Path(__file__).resolve().parents[1]


def main(repeats: int = 5) -> dict:
    times = []
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
        "machine": {**records.describe_device(), "load_average": list(os.getloadavg())},
        "date": dt.date.today().isoformat(),
        "command": f"python benchmarks/bench_data.py {repeats}",
    }
    (ROOT / "benchmarks" / "results" / "data.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
