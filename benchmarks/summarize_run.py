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


def main(run_dir: str, note: str = "") -> None:
    summary = summarize(Path(run_dir))
    if note:  # how the machine was loaded, for instance
        summary["note"] = note
    out = ROOT / "benchmarks" / "results" / f"{summary['profile']}_run.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")
    readme = ROOT / "README.md"
    text = readme.read_text()
    if summary["profile"] == "default" and START in text and END in text:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        readme.write_text(f"{head}{START}\n{readme_table(summary)}\n{END}{tail}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
