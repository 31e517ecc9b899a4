"""What every benchmark result carries, and where the CPU benchmarks put it.

A figure means little without its machine, the machine's load, the versions, the commit, the
date and the command: `measured` adds them (every benchmark script), `save` writes
`benchmarks/results/NAME.json` and shows it (the CPU scripts; the accelerator's has `--out`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

from fmnist_lib import records

RESULTS = Path(__file__).resolve().parent / "results"


def measured(result: dict[str, Any], load_before: list[float]) -> dict[str, Any]:
    """`result` with the machine (and its load before and after), versions, date and command."""
    return {
        **result,
        "machine": {
            **records.describe_device(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "versions": records.package_versions(),
        "git": records.git_state(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
    }


def save(name: str, result: dict[str, Any]) -> Path:
    """Write `result` to benchmarks/results/NAME.json and print it."""
    path = records.write_json(RESULTS / f"{name}.json", result)
    print(json.dumps(result, indent=2))
    return path
