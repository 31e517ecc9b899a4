"""Sweeps: a grid of pipeline runs on Dask, one run folder per point, compared in one table.

A grid (`params/sweeps/NAME.yaml`) names a base profile, fixed overrides and lists of values
to vary; each point of their cartesian product is one `pipeline.run_pipeline` into
`runs/sweeps/<sweep-id>/<point-id>/`. `sweep.json` there records every point's parameters, run
folder and status, so re-running the same grid skips finished points and resumes the others.

`dispatch` runs the points on Dask (each in a child process of its worker) and `sweep_report`
compares them; this module holds the grid, the manifest and `run_sweep`, which joins them.
Progress goes to `logging` (one line per change); the command line decides where it shows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmnist_lib import config, dispatch, pipeline, records

log = logging.getLogger(__name__)

MANIFEST = "sweep.json"
REPORT = "06_sweep_results"
DEMO_DIR = config.NOTEBOOKS_DIR / "sweep_demo"  # a real sweep's records, read by 06 by default
GRID_KEYS = {"description", "profile", "notebooks", "models", "parameters", "vary"}


# --- the grid -------------------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """A parsed grid file: base profile, fixed overrides and the values to vary."""

    name: str
    path: Path
    profile: str
    parameters: dict[str, Any]
    vary: dict[str, list[Any]]
    notebooks: list[str] | None = None
    models: list[str] | None = None
    description: str = ""

    def points(self) -> list[dict[str, Any]]:
        """The cartesian product of `vary`, in file order (the last key varies fastest)."""
        keys = list(self.vary)
        return [
            dict(zip(keys, values, strict=True))
            for values in itertools.product(*self.vary.values())
        ]

    def spec(self) -> dict[str, Any]:
        """Everything that decides the results, for the sweep id and the manifest."""
        return {
            "profile": self.profile,
            "notebooks": self.notebooks,
            "models": self.models,
            "parameters": self.parameters,
            "vary": self.vary,
        }


def load_grid(path: str | os.PathLike[str]) -> Grid:
    """Read and check the structure of a grid file; values are checked by `validate`."""
    path = Path(path).resolve()
    if not path.is_file():
        raise pipeline.ParameterError(f"no grid file {path}; grids live in params/sweeps/")
    grid = pipeline.read_yaml(path, "sweep grid")
    problems = [f"unknown key {key!r}" for key in sorted(set(grid) - GRID_KEYS)]
    vary = grid.get("vary")
    if not isinstance(vary, dict) or not vary:
        problems.append("`vary` must map parameter names to lists of values")
    else:
        problems += [
            f"vary: {key} needs a non-empty list of values"
            for key, values in vary.items()
            if not isinstance(values, list) or not values
        ]
    fixed = grid.get("parameters") or {}
    if not isinstance(fixed, dict):
        problems.append("`parameters` must map names to values")
    elif isinstance(vary, dict):
        problems += [f"{key} is both fixed and varied" for key in fixed if key in vary]
    for key in ("notebooks", "models"):
        value = grid.get(key)
        if value is not None and not (isinstance(value, list) and value):
            problems.append(f"`{key}` must be a non-empty list")
    if not grid.get("profile"):
        problems.append("`profile` names the base profile (params/NAME.yaml)")
    if problems:
        raise pipeline.ParameterError(f"grid {path}:\n  - " + "\n  - ".join(problems))
    return Grid(
        name=path.stem,
        path=path,
        profile=str(grid["profile"]),
        parameters=dict(fixed),
        vary=dict(vary),
        notebooks=grid.get("notebooks"),
        models=grid.get("models"),
        description=str(grid.get("description", "")),
    )


def sweep_id(grid: Grid) -> str:
    """`<grid name>-<hash>` of the grid and its profile: the same grid reuses its folder."""
    profile = pipeline.load_profile(grid.profile)
    blob = json.dumps({"grid": grid.spec(), "profile": profile}, sort_keys=True, default=str)
    return f"{grid.name}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


def point_id(index: int, values: dict[str, Any], width: int = 2) -> str:
    """A readable folder name: `p03_LEARNING_RATE-0.001_SEED-2`."""
    parts = [
        f"{key}-{re.sub(r'[^A-Za-z0-9.+-]', '_', str(value))}" for key, value in values.items()
    ]
    return "_".join([f"p{index:0{width}d}", *parts])


def validate(grid: Grid) -> list[dict[str, Any]]:
    """Plan every point as a single run would; the first invalid point raises, named.

    A point whose planned steps equal an earlier point's (`SEED: [1, 1]`, or `1e-3` beside
    `0.001`) would run the same thing twice: it is left out, with a line saying so.
    """
    points = grid.points()
    width = max(2, len(str(len(points) - 1)))
    planned, seen = [], {}
    for i, values in enumerate(points):
        pid = point_id(i, values, width)
        try:
            steps = pipeline.plan(
                grid.profile, {**grid.parameters, **values}, grid.models, grid.notebooks
            )
        except pipeline.ParameterError as exc:
            shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
            raise pipeline.ParameterError(
                f"grid {grid.path.name}, point {pid} ({shown}): {exc}"
            ) from None
        key = json.dumps([[s.name, s.parameters] for s in steps], sort_keys=True, default=str)
        if key in seen:
            log.info("[sweep] point %s is the same run as %s: left out", pid, seen[key])
            continue
        seen[key] = pid
        planned.append({"id": pid, "parameters": values})
    return planned


# --- the manifest ---------------------------------------------------------------------


def _now() -> str:
    return dt.datetime.now().isoformat(timespec="seconds")


def _shown_path(path: Path) -> str:
    """A path relative to the project when inside it, for records that travel."""
    try:
        return str(path.relative_to(config.PROJ_ROOT))
    except ValueError:
        return str(path)


def open_manifest(grid: Grid, sweep_dir: Path, points: list[dict[str, Any]]) -> dict[str, Any]:
    """The sweep's `sweep.json`, created or re-read; a point done earlier stays done."""
    try:
        old = records.read_json(sweep_dir / MANIFEST, {})
        known = {p["id"]: p for p in old.get("points", [])}
    except (OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
        raise pipeline.RunError(
            f"{sweep_dir / MANIFEST} is damaged ({type(exc).__name__}: {exc}); move it away to "
            "start the sweep over (finished points' run folders are kept)"
        ) from None
    entries = []
    for point in points:
        entry = known.get(point["id"]) or {
            "id": point["id"],
            "parameters": point["parameters"],
            "run_dir": point["id"],
            "status": "pending",
            "error": None,
            "notebook": None,
            "attempts": 0,
        }
        run_status = records.run_status(sweep_dir / entry["run_dir"] / "run.json")
        if entry["status"] == "done" and run_status != "done":
            entry["status"] = "pending"  # its run folder was removed or damaged: run it again
        entries.append(entry)
    return {
        "sweep_id": sweep_dir.name,
        "grid": _shown_path(grid.path),
        "description": grid.description,
        **grid.spec(),
        "created": old.get("created", _now()),
        "status": old.get("status", "pending"),
        "invocations": old.get("invocations", []),
        "points": entries,
    }


def write_manifest(sweep_dir: Path, manifest: dict[str, Any]) -> Path:
    """Write `sweep.json` atomically, stamped with the time."""
    manifest["updated"] = _now()
    return records.write_json(sweep_dir / MANIFEST, manifest)


def read_manifest(sweep_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read `sweep.json`, or say how to make one."""
    manifest = records.read_json(Path(sweep_dir) / MANIFEST)
    if manifest is None:
        raise FileNotFoundError(
            f"no {MANIFEST} in {sweep_dir}: run `python -m fmnist_lib sweep --grid GRID` first"
        )
    return manifest


def counts(manifest: dict[str, Any]) -> dict[str, int]:
    """Points per status."""
    found = dict.fromkeys(("pending", "running", "done", "failed"), 0)
    for point in manifest["points"]:
        found[point["status"]] += 1
    return found


def progress_line(manifest: dict[str, Any], elapsed: float, note: str = "") -> str:
    """`[sweep] 2/4 done, 1 running, 1 failed, 00:03:12 elapsed - <note>`."""
    n = counts(manifest)
    clock = time.strftime("%H:%M:%S", time.gmtime(elapsed))
    line = (
        f"[sweep] {n['done']}/{len(manifest['points'])} done, {n['running']} running, "
        f"{n['failed']} failed, {clock} elapsed"
    )
    return f"{line} - {note}" if note else line


def summary(manifest: dict[str, Any]) -> str:
    """One paragraph of Markdown: the grid, what was varied and how many points finished."""
    n = counts(manifest)
    varied = ", ".join(f"`{k}` over {len(v)} values" for k, v in manifest["vary"].items())
    fixed = ", ".join(f"`{k}`={v}" for k, v in manifest["parameters"].items()) or "none"
    scope = [f"notebooks {', '.join(manifest['notebooks'])}"] if manifest["notebooks"] else []
    scope += [f"models {', '.join(manifest['models'])}"] if manifest["models"] else []
    return (
        f"Sweep `{manifest['sweep_id']}` from `{manifest['grid']}`: {len(manifest['points'])} "
        f"points on profile `{manifest['profile']}`"
        + (f" ({'; '.join(scope)})" if scope else "")
        + f", varying {varied}; fixed overrides: {fixed}. "
        f"{n['done']} done, {n['failed']} failed, {n['pending'] + n['running']} not run."
    )


def resolve_sweep_dir(sweep_dir: str | os.PathLike[str] = "") -> Path:
    """The sweep folder to read; an empty value means the committed demo sweep."""
    path = Path(sweep_dir).resolve() if str(sweep_dir) else DEMO_DIR
    read_manifest(path)  # fail early, saying what to do
    return path


# --- the sweep, on the client ----------------------------------------------------------


def point_task(grid: Grid, sweep_dir: Path, point: dict[str, Any]) -> dict[str, Any]:
    """What a worker needs to run one point: plain JSON."""
    return {
        "id": point["id"],
        "profile": grid.profile,
        "overrides": {**grid.parameters, **point["parameters"]},
        "models": grid.models,
        "notebooks": grid.notebooks,
        "run_dir": str(sweep_dir / point["run_dir"]),
        "log": str(sweep_dir / "logs" / f"{point['id']}.log"),
    }


def _finish(point: dict[str, Any], outcome: dict[str, Any]) -> str:
    """Record a point's outcome on it; return a note for the progress line."""
    point.update(outcome, finished=_now())
    if point["notebook"]:
        point["notebook"] = _shown_path(Path(point["notebook"]))
    if point["status"] == "done":
        return f"{point['id']} done in {point['seconds']:.0f} s"
    return f"{point['id']} failed: {point['error']}"


def execute_points(
    client: Any, grid: Grid, sweep_dir: Path, manifest: dict[str, Any], todo: list[dict]
) -> None:
    """Run the points on Dask, recording each start and end in `sweep.json` as it happens."""
    by_id = {p["id"]: p for p in todo}
    clock = time.perf_counter()

    def record(note: str) -> None:
        write_manifest(sweep_dir, manifest)
        log.info(progress_line(manifest, time.perf_counter() - clock, note))

    def started(event: dict[str, Any]) -> None:
        point = by_id.get(event["id"])
        if point and point["status"] == "pending":  # a late event of a finished point is news
            point.update(status="running", worker=event["worker"], worker_pid=event["pid"])
            point["started"] = _now()
            record(f"{point['id']} running on {event['worker']}")

    for point in todo:
        point.update(status="pending", error=None, notebook=None)
        point["attempts"] += 1
    try:
        dispatch.run_tasks(
            client,
            [point_task(grid, sweep_dir, point) for point in todo],
            on_start=started,
            on_finish=lambda task, outcome: record(_finish(by_id[task["id"]], outcome)),
        )
    finally:
        for point in todo:
            if point["status"] in ("pending", "running"):
                point.update(status="failed", error="the sweep was interrupted")
        write_manifest(sweep_dir, manifest)


def run_report(sweep_dir: Path) -> Path:
    """Execute `06_sweep_results` into the sweep folder; return the executed notebook."""
    step = pipeline.Step(REPORT, REPORT, {"SWEEP_DIR": str(sweep_dir)})
    pipeline.execute(step, sweep_dir, log_output=False)
    return sweep_dir / f"{REPORT}.ipynb"


def run_sweep(
    grid_path: str | os.PathLike[str],
    scheduler: str | None = None,
    workers: int | None = None,
    sweeps_dir: Path | None = None,
    report: bool = True,
) -> dict[str, Any]:
    """Validate every point, run those not done on Dask, write `sweep.json`; return it."""
    from fmnist_lib import data

    clock = time.perf_counter()
    grid = load_grid(grid_path)
    points = validate(grid)  # before anything is created or started
    data.load_fashion_mnist()  # find (or download) the data once, not once per point
    sweep_dir = (sweeps_dir or config.runs_dir() / "sweeps").resolve() / sweep_id(grid)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    manifest = open_manifest(grid, sweep_dir, points)
    todo = [p for p in manifest["points"] if p["status"] != "done"]
    where = scheduler or f"LocalCluster of {workers or os.cpu_count()} worker processes"
    manifest["invocations"].append({"started": _now(), "scheduler": where, "points": len(todo)})
    manifest["status"] = "running"
    write_manifest(sweep_dir, manifest)
    log.info(
        "[sweep] %s: %d points, %d already done, %d to run on %s -> %s",
        manifest["sweep_id"],
        len(points),
        len(points) - len(todo),
        len(todo),
        where,
        sweep_dir,
    )
    if todo:
        try:
            with dispatch.dask_client(scheduler, workers) as client:
                execute_points(client, grid, sweep_dir, manifest, todo)
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: the manifest says so
            manifest["status"] = "interrupted"
            manifest["invocations"][-1]["finished"] = _now()
            write_manifest(sweep_dir, manifest)
            raise type(exc)(
                f"sweep {manifest['sweep_id']}: unfinished points are recorded failed; the same "
                "command resumes them"
            ) from None
    n = counts(manifest)
    manifest["status"] = "done" if n["done"] == len(points) else "failed"
    manifest["invocations"][-1]["finished"] = _now()
    write_manifest(sweep_dir, manifest)
    if report and n["done"]:
        log.info("[sweep] results -> %s", run_report(sweep_dir))
    for line in closing_lines(sweep_dir, manifest, time.perf_counter() - clock):
        log.info(line)
    return manifest


def closing_lines(sweep_dir: Path, manifest: dict[str, Any], seconds: float) -> list[str]:
    """What a sweep says last: its best point, the command that repeats it, the time."""
    from fmnist_lib import sweep_report  # pandas and scikit-learn: only once results are read
    from fmnist_lib.catalog import duration

    n = counts(manifest)
    lines = [
        f"[sweep] {manifest['sweep_id']} finished in {duration(seconds)}: {n['done']} of "
        f"{len(manifest['points'])} points done -> {sweep_dir}"
    ]
    try:
        table = sweep_report.comparison_table(sweep_dir, manifest)
        best = sweep_report.best_configuration(table, manifest)
    except ValueError as exc:
        return [*lines, f"[sweep] {exc}"]
    return [
        *lines,
        f"[sweep] best point: {best['point']}, {best['model']}: validation accuracy "
        f"{best['val accuracy']:.2%}, test accuracy {best['test accuracy']:.2%}",
        f"[sweep] repeat it as one run: {sweep_report.run_command(manifest, best)}",
    ]
