"""Time `make test` in a checkout and record it in benchmarks/results/make_test.json.

Usage, in a fresh clone: python3 benchmarks/time_make_test.py   (runs `make test`, set-up
included, and keeps its log beside the JSON). The README's first screen reads the figure from
the JSON (`benchmarks/summarize_run.py`), so it is never typed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stamp import RESULTS, measured  # noqa: E402

from fmnist_lib import records  # noqa: E402

SUMMARY = re.compile(r"=+ (.*?(?:passed|failed).*?) in [\d.]+s")


def main() -> int:
    load = list(os.getloadavg())
    start = time.perf_counter()
    out = subprocess.run(["make", "test"], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log = out.stdout + out.stderr
    (RESULTS / "make_test.log").write_text(log)
    found = SUMMARY.findall(log)
    result = measured(
        {
            "benchmark": "make test from a fresh clone, set-up included",
            "seconds": round(seconds, 1),
            "exit_code": out.returncode,
            "pytest_summary": found[-1] if found else None,
        },
        load,
    )
    result["command"] = "make test (timed by python3 benchmarks/time_make_test.py)"
    records.write_json(RESULTS / "make_test.json", result)
    print(f"make test: exit {out.returncode}, {seconds / 60:.1f} min, {result['pytest_summary']}")
    return out.returncode


if __name__ == "__main__":
    sys.exit(main())
