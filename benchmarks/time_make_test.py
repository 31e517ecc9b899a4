"""Time `make test` in a checkout and record it in benchmarks/results/make_test.json.

Usage, in a fresh clone: `python3 benchmarks/time_make_test.py` runs `make test`, set-up
included, and keeps its log beside the JSON; `.venv/bin/python benchmarks/time_make_test.py
LOG SECONDS` records a `make test` already timed (its log and wall seconds). The README's first
screen reads the figure from the JSON (`benchmarks/summarize_run.py`), so it is never typed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

from stamp import RESULTS, measured  # noqa: E402

from fmnist_lib import records  # noqa: E402

SUMMARY = re.compile(r"=+ (.*?(?:passed|failed).*?) in [\d.]+s")


def record(log: str, seconds: float, exit_code: int, load: list[float]) -> dict:
    """Write benchmarks/results/make_test.json (and the log beside it) for one `make test`."""
    (RESULTS / "make_test.log").write_text(log)
    found = SUMMARY.findall(log)
    result = measured(
        {
            "benchmark": "make test from a fresh clone, set-up included",
            "seconds": round(seconds, 1),
            "exit_code": exit_code,
            "pytest_summary": found[-1] if found else None,
        },
        load,
    )
    result["command"] = "make test (timed by benchmarks/time_make_test.py)"
    records.write_json(RESULTS / "make_test.json", result)
    print(f"make test: exit {exit_code}, {seconds / 60:.1f} min, {result['pytest_summary']}")
    return result


def main(argv: list[str]) -> int:
    load = list(os.getloadavg())
    if argv:  # LOG SECONDS [EXIT]: a run timed elsewhere
        log = Path(argv[0]).read_text()
        code = int(argv[2]) if len(argv) > 2 else 0
        record(log, float(argv[1]), code, load)
        return 0
    start = time.perf_counter()
    out = subprocess.run(["make", "test"], capture_output=True, text=True)
    record(out.stdout + out.stderr, time.perf_counter() - start, out.returncode, load)
    return out.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
