"""Summarise a finished pipeline run into benchmarks/results/<profile>_run.json and the README.

Usage: python benchmarks/summarize_run.py runs/<run-id> ["note on the machine's load"]

The README's results table (between the `results:start` / `results:end` markers) is generated
from that JSON, so the numbers there are computed, never typed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- results:start -->", "<!-- results:end -->"
TIMING = "<!-- timing:start -->", "<!-- timing:end -->"


def summarize(run_dir: Path) -> dict:
    run = json.loads((run_dir / "run.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {
        "run_id": run["run_id"],
        "profile": run["profile"],
        "status": run["status"],
        "command": "make run" if run["profile"] == "default" else " ".join(run["command"]),
        "git": run["git"],
        "machine": run["device"],
        "finished": run.get("finished"),
        "total_seconds": run.get("seconds"),
        "steps": {s["name"]: s.get("seconds") for s in run["steps"]},
        "models": {
            name: {
                k: m.get(k)
                for k in (
                    "accuracy",
                    "macro_f1",
                    "epochs",
                    "train_seconds",
                    "n_train",
                    "weights_used",
                    "weights_label",
                    "fine_tune",
                    "stem",
                    "image_size",
                    "params",
                )
            }
            for name, m in metrics.get("training", {}).items()
        },
    }


def readme_table(summary: dict) -> str:
    rows = [
        f"Measured by `{summary['command']}` (run `{summary['run_id']}`, commit "
        f"`{(summary['git']['commit'] or '')[:10]}`) on {summary['machine']['cpu']} with "
        f"{summary['machine']['cpu_count']} cores, backend {summary['machine']['keras_backend']}: "
        f"{summary['total_seconds'] / 60:.1f} minutes in all"
        + (f" ({summary['note']})." if summary.get("note") else "."),
        "",
        "| model | test accuracy | macro F1 | epochs | training images | train time (s) "
        "| weights |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, m in summary["models"].items():
        weights = m.get("weights_label") or m["weights_used"] or "-"
        rows.append(
            f"| {name} | {m['accuracy']:.2%} | {m['macro_f1']:.3f} | {m['epochs']} | "
            f"{m['n_train']:,} | {m['train_seconds']:.0f} | {weights} |"
        )
    return "\n".join(rows)


def between(text: str, markers: tuple[str, str], body: str) -> str:
    """`text` with what stands between the two markers replaced by `body`."""
    start, end = markers
    if start not in text or end not in text:
        return text
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def tests_timing() -> dict | None:
    """The last timed `make test` (benchmarks/time_make_test.py), if any."""
    path = ROOT / "benchmarks" / "results" / "make_test.json"
    return json.loads(path.read_text()) if path.exists() else None


def first_screen(run: dict, tests: dict | None) -> str:
    """The README's first-screen timing line, from the last `make run` and `make test`."""
    cpu = f"{run['machine']['cpu']}, {run['machine']['cpu_count']} cores"
    line = (
        f"**How long**, measured from a fresh clone: `make run` {run['total_seconds'] / 60:.1f} "
        f"minutes of pipeline on {cpu}" + (f" ({run['note']})" if run.get("note") else "")
    )
    if tests:
        machine = tests["machine"]
        line += (
            f"; `make test` {tests['seconds'] / 60:.1f} minutes with its set-up "
            f"({tests['pytest_summary']}) on {machine['cpu']}, {machine['cpu_count']} cores"
        )
    return (
        line + ". Figures vary by machine (the same 2-core kind is sometimes an Intel Xeon, "
        "sometimes an AMD EPYC) and by about twofold from minute to minute; the `gpu` profile's "
        "figures on one H200 are in [BENCHMARKS.md](BENCHMARKS.md)."
    )


def main(run_dir: str, note: str = "") -> None:
    summary = summarize(Path(run_dir))
    if note:  # how the machine was loaded, for instance
        summary["note"] = note
    out = ROOT / "benchmarks" / "results" / f"{summary['profile']}_run.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")
    readme = ROOT / "README.md"
    text = readme.read_text()
    if summary["profile"] == "default" and START in text and END in text:
        text = between(text, (START, END), readme_table(summary))
        text = between(text, TIMING, first_screen(summary, tests_timing()))
        readme.write_text(text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
