"""Run folders read back for a person: the summary a run ends with, and the list of runs.

`records` writes `run.json` and `metrics.json`; this module only reads them. It never raises
over a folder it cannot read: a damaged or foreign folder is named as such, and a folder with
no `run.json` at all is skipped with a note.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fmnist_lib import records
from fmnist_lib.pipeline import LOCK_FILE

RESULTS_NOTEBOOK = "04_results.ipynb"
SLIDES = ("slides.html", "slides.pdf")
DEFAULT_LIMIT = 20


# --- formatting ------------------------------------------------------------------------


def duration(seconds: float | None) -> str:
    """`41 s`, `12.1 min` or `2.3 h`; `-` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def percent(value: float | None) -> str:
    """`92.89%`; `-` when unknown."""
    return "-" if value is None else f"{value:.2%}"


def columns(rows: list[list[str]], right: frozenset[int] = frozenset()) -> list[str]:
    """Rows of cells as aligned text lines; the columns in `right` are right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


# --- one run: the summary printed when it ends -----------------------------------------


def read_training(run_dir: Path) -> dict[str, dict[str, Any]]:
    """`metrics.json` -> `training` (model -> its metrics), empty before any training.

    Raises ValueError when the file is not JSON or not shaped as a run writes it.
    """
    metrics = records.read_json(run_dir / "metrics.json", {})
    training = metrics.get("training", {}) if isinstance(metrics, dict) else None
    if not isinstance(training, dict) or not all(isinstance(m, dict) for m in training.values()):
        raise ValueError(f"{run_dir / 'metrics.json'} is not shaped as a run writes it")
    return training


def best_model(training: dict[str, dict[str, Any]]) -> str | None:
    """The model with the highest test accuracy, macro F1 breaking ties (as in `report`)."""
    scored = {
        name: (m.get("accuracy"), m.get("macro_f1") or 0.0)
        for name, m in training.items()
        if isinstance(m, dict) and isinstance(m.get("accuracy"), int | float)
    }
    return max(scored, key=scored.__getitem__) if scored else None


def model_table(training: dict[str, dict[str, Any]]) -> list[str]:
    """One line per trained model: test accuracy, macro F1, training time, weights used."""
    from fmnist_lib.report import method_label

    best = best_model(training) if len(training) > 1 else None
    rows = [["model", "test accuracy", "macro F1", "train time", "weights used"]]
    for name, m in training.items():
        f1 = m.get("macro_f1")
        rows.append(
            [
                f"{name} *" if name == best else name,
                percent(m.get("accuracy")),
                "-" if f1 is None else f"{f1:.3f}",
                duration(m.get("train_seconds")),
                method_label(m),
            ]
        )
    return columns(rows, right=frozenset({1, 2, 3}))


def summary_lines(run_dir: Path, record: dict[str, Any]) -> list[str]:
    """What a finished run prints last: its models, where to look, and the total time."""
    try:
        training, problem = read_training(run_dir), ""
    except (OSError, ValueError) as exc:  # the run is done: say so, then what is wrong
        training, problem = {}, f"  (no model table: {exc})"
    sessions = 1 + len(record.get("resumed", []))
    took = duration(record.get("seconds"))
    lines = [
        f"fmnist: run {run_dir.name} (profile {record.get('profile')}) done in {took}"
        + (f" over {sessions} sessions" if sessions > 1 else "")
    ]
    lines += [problem] if problem else []
    if training:
        lines += [f"  {line}" for line in model_table(training)]
        lines += ["  (* best test accuracy)"] if len(training) > 1 else []
    shown = [name for name in (*SLIDES, RESULTS_NOTEBOOK) if (run_dir / name).is_file()]
    lines += [f"  {name:<18} {run_dir / name}" for name in shown]
    lines.append(f"  {'run folder':<18} {run_dir}")
    return lines


# --- every run: `python -m fmnist_lib runs` --------------------------------------------


@dataclass(frozen=True)
class RunEntry:
    """One run folder as listed by `python -m fmnist_lib runs`."""

    id: str
    path: str
    status: str  # done | failed | interrupted | running | damaged | foreign
    profile: str | None = None
    started: str | None = None
    seconds: float | None = None
    best_model: str | None = None
    accuracy: float | None = None
    note: str = ""


def lock_held(run_dir: Path) -> bool | None:
    """Whether a live process holds the run folder's lock; None when that cannot be told.

    `pipeline.run_lock` holds an OS lock (flock) that the OS drops when its holder dies, so
    this asks the OS: a shared, non-blocking flock on the lock file, released at once.
    """
    try:
        fd = os.open(run_dir / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def status_of(run_dir: Path, record: dict[str, Any]) -> tuple[str, str]:
    """The run's status and a note. A record left `running` by a process that died (killed,
    out of memory, machine stopped) is `interrupted`: no process holds its lock any more."""
    status = record.get("status")
    if status == "running":
        held = lock_held(run_dir)
        if held is False:
            return "interrupted", f"its process is gone; finish it with --resume {run_dir}"
        steps = [s for s in record.get("steps") or [] if isinstance(s, dict)]
        step = next((s.get("name") for s in reversed(steps) if s.get("status") == "running"), "")
        if held is None:
            return "running", "recorded as running; cannot tell whether its process lives"
        return "running", f"in {step}" if step else ""
    if status in ("done", "failed", "interrupted"):
        step = record.get("failed_step") or record.get("interrupted_step")
        return status, f"in {step}" if step else ""
    return "damaged", f"run.json has an unknown status {status!r}"


def wall_seconds(record: dict[str, Any]) -> float | None:
    """A finished run's total time; otherwise the time its steps have taken so far."""
    if isinstance(record.get("seconds"), int | float):
        return float(record["seconds"])
    steps = [s.get("seconds") for s in record.get("steps") or [] if isinstance(s, dict)]
    spent = [s for s in steps if isinstance(s, int | float)]
    return float(sum(spent)) if spent else None


def read_entry(run_dir: Path) -> RunEntry:
    """One run folder's entry, from its `run.json` and `metrics.json`."""
    base = {"id": run_dir.name, "path": str(run_dir)}
    try:
        record = json.loads((run_dir / "run.json").read_text())
    except json.JSONDecodeError as exc:
        return RunEntry(**base, status="damaged", note=f"run.json: {exc.msg} at line {exc.lineno}")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        return RunEntry(**base, status="damaged", note=f"run.json unreadable: {reason}")
    if not isinstance(record, dict) or "profile" not in record:
        return RunEntry(**base, status="foreign", note="run.json is not a run record of fmnist")
    problem = records.run_record_problem(record)
    if problem:
        return RunEntry(**base, status="damaged", note=f"run.json: {problem}")
    status, note = status_of(run_dir, record)
    best, accuracy = None, None
    try:
        training = read_training(run_dir)
        best = best_model(training)
        accuracy = training[best]["accuracy"] if best else None
    except (OSError, ValueError):
        note = "; ".join(filter(None, [note, "metrics.json unreadable"]))
    return RunEntry(
        **base,
        status=status,
        profile=record.get("profile"),
        started=record.get("started"),
        seconds=wall_seconds(record),
        best_model=best,
        accuracy=accuracy,
        note=note,
    )


def list_runs(root: Path) -> tuple[list[RunEntry], list[str]]:
    """Every run folder under `root`, newest first, and the names of the folders skipped.

    A `root` that does not exist holds no runs; one that is not a readable folder raises
    OSError.
    """
    entries, skipped = [], []
    for path in sorted(root.iterdir()) if root.exists() else []:
        if path.name.startswith("."):
            continue
        if path.is_dir() and (path / "run.json").exists():
            entries.append(read_entry(path))
        else:
            skipped.append(path.name)

    def newest(entry: RunEntry) -> str:
        if entry.started:
            return str(entry.started)
        try:  # a damaged record: the folder's own time
            mtime = Path(entry.path).stat().st_mtime
        except OSError:
            return ""
        return dt.datetime.fromtimestamp(mtime).isoformat(timespec="seconds")

    return sorted(entries, key=newest, reverse=True), skipped


def listing_lines(entries: list[RunEntry], skipped: list[str], total: int) -> list[str]:
    """The runs as an aligned table, then what was left out and why."""
    if not entries:
        lines = ["no runs yet: `make run` or `python -m fmnist_lib run --profile smoke`"]
    else:
        rows = [["run", "profile", "status", "started", "wall time", "best", "accuracy", "note"]]
        rows += [
            [
                e.id,
                e.profile or "-",
                e.status,
                (e.started or "-").replace("T", " ")[:16],
                duration(e.seconds),
                e.best_model or "-",
                percent(e.accuracy),
                e.note,
            ]
            for e in entries
        ]
        lines = columns(rows, right=frozenset({4, 6}))
    if total > len(entries):
        lines.append(f"({len(entries)} of {total} runs shown; --limit 0 shows all)")
    if skipped:
        lines.append(f"(skipped, no run.json: {', '.join(skipped)})")
    return lines


def show_runs(root: Path, limit: int = DEFAULT_LIMIT, as_json: bool = False) -> str:
    """`python -m fmnist_lib runs`: the most recent `limit` runs (0: all), as text or JSON."""
    entries, skipped = list_runs(root)
    shown = entries[:limit] if limit > 0 else entries
    if as_json:
        blob = {
            "runs_dir": str(root),
            "runs": [asdict(e) for e in shown],
            "total": len(entries),
            "skipped": skipped,
        }
        return json.dumps(blob, indent=2)
    return "\n".join([f"runs in {root}:", *listing_lines(shown, skipped, len(entries))])
