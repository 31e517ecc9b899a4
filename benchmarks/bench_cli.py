"""Command-line refusal time: a bad parameter is refused before TensorFlow could even load.

Usage: python benchmarks/bench_cli.py [REPEATS]
Times `python -m fmnist_lib check --profile smoke -p NO_SUCH 1` (a refusal, exit 2) and
`check --profile default` (a full validation, exit 0) as fresh processes; medians of REPEATS.
Writes benchmarks/results/cli.json with the machine it was measured on.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import stamp

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "refusal: check --profile smoke -p NO_SUCH 1": (
        ["--profile", "smoke", "-p", "NO_SUCH", "1"],
        2,
    ),
    "validation: check --profile default": (["--profile", "default"], 0),
}


def time_command(args: list[str], code: int, repeats: int) -> float:
    """Median wall seconds of a fresh `python -m fmnist_lib check ...` process."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "fmnist_lib", "check", *args], capture_output=True, cwd=ROOT
        )
        seconds.append(time.perf_counter() - start)
        assert out.returncode == code, out.stderr
    return statistics.median(seconds)


def main(repeats: int = 5) -> dict:

    load_before = list(os.getloadavg())
    result = {
        "benchmark": "command-line validation time, fresh process",
        "repeats": repeats,
        "cases": {name: round(time_command(a, c, repeats), 3) for name, (a, c) in CASES.items()},
    }
    result = stamp.measured(result, load_before)
    stamp.save("cli", result)
    return result


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
