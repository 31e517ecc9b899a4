"""Sweeps: a grid of pipeline runs on Dask, one run folder per point, compared in one table.

A grid (`params/sweeps/NAME.yaml`) names a base profile, fixed overrides and lists of values
to vary; each point of their cartesian product is one `pipeline.run_pipeline` into
`runs/sweeps/<sweep-id>/<point-id>/`. `sweep.json` there records every point's parameters, run
folder and status, so re-running the same grid skips finished points and resumes the others.

Each Dask task runs its point in a child process (`python -m fmnist_lib.sweep POINT`), not in
the worker itself. The kernels papermill starts are processes either way, but validating a
point imports TensorFlow and Keras, and `run_pipeline` prints, logs through papermill's global
logger and records `sys.argv`. In a child, a point's memory is returned when it ends, its output
goes to its own log, a crash in native code fails the point rather than the worker, and workers
with several threads stay safe. The child exits when its worker dies, and its kernel follows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import itertools
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmnist_lib import config, pipeline, records

MANIFEST = "sweep.json"
REPORT = "06_sweep_results"
DEMO_DIR = config.NOTEBOOKS_DIR / "sweep_demo"  # a real sweep's records, read by 06 by default
GRID_KEYS = {"description", "profile", "notebooks", "models", "parameters", "vary"}
# Our own LocalCluster does not retry a point whose worker died: it is recorded as failed,
# and the next run of the sweep resumes it in its run folder.
LOCAL_DASK_CONFIG = {"distributed.scheduler.allowed-failures": 0}


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
    """Plan every point as a single run would; the first invalid point raises, named."""
    points = grid.points()
    width = max(2, len(str(len(points) - 1)))
    planned = []
    for i, values in enumerate(points):
        pid = point_id(i, values, width)
        try:
            pipeline.plan(grid.profile, {**grid.parameters, **values}, grid.models, grid.notebooks)
        except pipeline.ParameterError as exc:
            shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
            raise pipeline.ParameterError(
                f"grid {grid.path.name}, point {pid} ({shown}): {exc}"
            ) from None
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
    old = records.read_json(sweep_dir / MANIFEST, {})
    known = {p["id"]: p for p in old.get("points", [])}
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
        run = records.read_json(sweep_dir / entry["run_dir"] / "run.json", {})
        if entry["status"] == "done" and run.get("status") != "done":
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


# --- one point, on a worker ------------------------------------------------------------


def failure(run_dir: Path, fallback: str) -> dict[str, Any]:
    """The error and notebook of a point that did not finish, from its `run.json`."""
    steps = records.read_json(run_dir / "run.json", {}).get("steps", [])
    bad = next((s for s in reversed(steps) if s["status"] != "done"), None)
    notebook = run_dir / bad["notebook"] if bad else None
    return {
        "status": "failed",
        "error": (bad or {}).get("error") or fallback,
        "notebook": str(notebook) if notebook and notebook.exists() else None,
    }


def _last_lines(log: Path, n: int = 3) -> str:
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    return " / ".join(lines[-n:]) or "no output"


def run_point(task: dict[str, Any], topic: str = "") -> dict[str, Any]:
    """Dask task: run one point in a child process; a failed run returns, never raises."""
    with contextlib.suppress(ValueError):  # outside a worker there is nobody to tell
        from distributed import get_worker

        worker = get_worker()
        worker.log_event(topic, {"id": task["id"], "worker": worker.address, "pid": os.getpid()})
    run_dir, log = Path(task["run_dir"]), Path(task["log"])
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    with log.open("a") as out:
        out.write(f"==> {_now()} point {task['id']}\n")
        out.flush()
        proc = subprocess.run(
            [sys.executable, "-m", "fmnist_lib.sweep", json.dumps(task)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=config.PROJ_ROOT,
            env=env,
            check=False,
        )
    seconds = round(time.perf_counter() - start, 1)
    run = records.read_json(run_dir / "run.json", {})
    if proc.returncode == 0 and run.get("status") == "done":
        return {"status": "done", "error": None, "notebook": None, "seconds": seconds}
    outcome = failure(run_dir, f"exit code {proc.returncode}: {_last_lines(log)}")
    return {**outcome, "seconds": seconds}


def _exit_with_parent(interval: float = 1.0) -> None:
    """Exit when the parent (the Dask worker) dies, so no orphan keeps computing."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        print("fmnist: the Dask worker running this point died; stopping", flush=True)
        os._exit(3)  # the notebook kernel notices its parent is gone and exits too

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def point_main(argv: list[str]) -> int:
    """`python -m fmnist_lib.sweep TASK_JSON`: one point's pipeline, resumed if it started."""
    task = json.loads(argv[0])
    _exit_with_parent()
    lock = Path(task["log"]).with_suffix(".lock").open("w")
    try:  # held until this process ends, however it ends
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"fmnist: error: point {task['id']} is being run by another process", file=sys.stderr)
        return 1
    run_dir = Path(task["run_dir"])
    started = (run_dir / "run.json").exists()
    try:
        pipeline.run_pipeline(
            task["profile"],
            task["overrides"],
            models=task["models"],
            notebooks=task["notebooks"],
            run_dir=None if started else run_dir,
            resume=run_dir if started else None,
        )
    except Exception as exc:  # known failures: one line, no traceback wall
        code = pipeline.exit_code(exc)
        if code is None:
            raise
        return code
    return 0


# --- the sweep, on the client ----------------------------------------------------------


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int | None) -> Iterator[Any]:
    """A client of the cluster at `scheduler`, or of a LocalCluster of `workers` processes."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with (
        dask.config.set(LOCAL_DASK_CONFIG),
        LocalCluster(
            n_workers=workers or os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


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


def _finish(point: dict[str, Any], future: Any, sweep_dir: Path) -> str:
    """Record a finished future on its point; return a note for the progress line."""
    if future.status == "finished":
        outcome = future.result()
    else:
        exc = future.exception()
        name = type(exc).__name__
        reason = "its Dask worker died" if name == "KilledWorker" else "the Dask task failed"
        outcome = failure(sweep_dir / point["run_dir"], f"{reason} ({name}: {exc})")
    point.update(outcome, finished=_now())
    if point["notebook"]:
        point["notebook"] = _shown_path(Path(point["notebook"]))
    if point["status"] == "done":
        return f"{point['id']} done in {point['seconds']:.0f} s"
    return f"{point['id']} failed: {point['error']}"


def execute_points(
    client: Any, grid: Grid, sweep_dir: Path, manifest: dict[str, Any], todo: list[dict]
) -> None:
    """Run the points on Dask, recording each start and end in `sweep.json` as it happens.

    Only as many points are submitted as the cluster has threads; the next goes out when one
    finishes. A point is hours of work, so it is never queued behind another on a worker while
    a second worker idles.
    """
    from distributed import as_completed

    topic = f"fmnist-sweep-{manifest['sweep_id']}"
    started: queue.SimpleQueue = queue.SimpleQueue()
    client.subscribe_topic(topic, lambda event: started.put(event[1]))
    by_id = {p["id"]: p for p in todo}
    waiting, futures = list(todo), {}
    finished = as_completed()
    clock = time.perf_counter()

    def record(note: str) -> None:
        write_manifest(sweep_dir, manifest)
        print(progress_line(manifest, time.perf_counter() - clock, note), flush=True)

    def submit_more() -> None:
        slots = max(1, sum(client.nthreads().values())) - len(futures)
        for point in waiting[: max(0, slots)]:
            waiting.remove(point)
            point.update(status="pending", error=None, notebook=None)
            point["attempts"] += 1
            task = point_task(grid, sweep_dir, point)
            future = client.submit(run_point, task, topic, key=f"fmnist-point-{uuid.uuid4()}")
            futures[future] = point
            finished.add(future)

    try:
        submit_more()
        while futures:
            while not started.empty():
                event = started.get()
                point = by_id.get(event["id"])
                if point and point["status"] == "pending":
                    point.update(status="running", worker=event["worker"], worker_pid=event["pid"])
                    point["started"] = _now()
                    record(f"{point['id']} running on {event['worker']}")
            if finished.has_ready():
                for future in finished.next_batch(block=False):
                    record(_finish(futures.pop(future), future, sweep_dir))
                submit_more()
            time.sleep(0.2)
    finally:
        for point in todo:
            if point["status"] in ("pending", "running"):
                point.update(status="failed", error="the sweep was interrupted")
        write_manifest(sweep_dir, manifest)
        client.unsubscribe_topic(topic)


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
    print(
        f"[sweep] {manifest['sweep_id']}: {len(points)} points, "
        f"{len(points) - len(todo)} already done, {len(todo)} to run on {where} -> {sweep_dir}",
        flush=True,
    )
    if todo:
        with dask_client(scheduler, workers) as client:
            execute_points(client, grid, sweep_dir, manifest, todo)
    n = counts(manifest)
    manifest["status"] = "done" if n["done"] == len(points) else "failed"
    manifest["invocations"][-1]["finished"] = _now()
    write_manifest(sweep_dir, manifest)
    if report and n["done"]:
        print(f"[sweep] results -> {run_report(sweep_dir)}", flush=True)
    print("\n".join(closing_lines(sweep_dir, manifest, time.perf_counter() - clock)), flush=True)
    return manifest


def closing_lines(sweep_dir: Path, manifest: dict[str, Any], seconds: float) -> list[str]:
    """What a sweep prints last: its best point, the command that repeats it, the time."""
    from fmnist_lib.catalog import duration

    n = counts(manifest)
    lines = [
        f"[sweep] {manifest['sweep_id']} finished in {duration(seconds)}: {n['done']} of "
        f"{len(manifest['points'])} points done -> {sweep_dir}"
    ]
    try:
        best = best_configuration(comparison_table(sweep_dir), manifest)
    except ValueError as exc:
        return [*lines, f"[sweep] {exc}"]
    return [
        *lines,
        f"[sweep] best point: {best['point']}, {best['model']}: validation accuracy "
        f"{best['val accuracy']:.2%}, test accuracy {best['test accuracy']:.2%}",
        f"[sweep] repeat it as one run: {run_command(manifest, best)}",
    ]


# --- results ---------------------------------------------------------------------------


def resolve_sweep_dir(sweep_dir: str | os.PathLike[str] = "") -> Path:
    """The sweep folder to read; an empty value means the committed demo sweep."""
    path = Path(sweep_dir).resolve() if str(sweep_dir) else DEMO_DIR
    read_manifest(path)  # fail early, saying what to do
    return path


def _best_val_accuracy(run_dir: Path, model: str) -> float | None:
    history = records.read_json(run_dir / "models" / model / "history.json", [])
    values = [row["val_accuracy"] for row in history if "val_accuracy" in row]
    return max(values) if values else None


def comparison_table(sweep_dir: str | os.PathLike[str]):
    """One row per point and trained model, read from each run's `metrics.json`."""
    import pandas as pd

    sweep_dir = Path(sweep_dir)
    manifest = read_manifest(sweep_dir)
    rows = []
    for point in manifest["points"]:
        run_dir = sweep_dir / point["run_dir"]
        trained = records.read_json(run_dir / "metrics.json", {}).get("training", {})
        base = {"point": point["id"], **point["parameters"], "status": point["status"]}
        for model, m in trained.items() or [(None, {})]:
            rows.append(
                {
                    **base,
                    "model": model,
                    "val accuracy": _best_val_accuracy(run_dir, model) if model else None,
                    "test accuracy": m.get("accuracy"),
                    "macro F1": m.get("macro_f1"),
                    "epochs": m.get("epochs"),
                    "train time (s)": m.get("train_seconds"),
                }
            )
    return pd.DataFrame(rows).set_index("point")


def write_table(table, run_dir: str | os.PathLike[str]) -> Path:
    """Save the comparison as `sweep_comparison.csv` in the run folder."""
    path = Path(run_dir) / "sweep_comparison.csv"
    table.to_csv(path)
    return path


def parameter_effects(table, varied: list[str]):
    """Mean, spread and range of validation and test accuracy for each value of each parameter."""
    import pandas as pd

    done = table[table["status"] == "done"]
    parts = {
        key: done.groupby([done[key].map(str), "model"], sort=False)[
            ["val accuracy", "test accuracy"]
        ].agg(["mean", "std", "min", "max"])
        for key in varied
    }
    effects = pd.concat(parts, names=["parameter", "value", "model"])
    effects.columns = [
        f"{split.removesuffix(' accuracy')} {stat}" for split, stat in effects.columns
    ]
    return effects


def best_configuration(table, manifest: dict[str, Any]) -> dict[str, Any]:
    """The point and model with the best validation accuracy (the test set only reports)."""
    done = table[table["status"] == "done"].dropna(subset=["val accuracy"])
    if done.empty:
        raise ValueError("no point of this sweep has finished: nothing to compare")
    order = done.sort_values(["val accuracy", "test accuracy"], ascending=False, kind="stable")
    point, row = order.index[0], order.iloc[0]
    varied = {key: row[key] for key in manifest["vary"]}
    return {
        "point": point,
        "model": row["model"],
        "val accuracy": float(row["val accuracy"]),
        "test accuracy": float(row["test accuracy"]),
        "parameters": {**manifest["parameters"], **_plain(varied)},
    }


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """NumPy scalars from a table row back to Python values."""
    return {k: v.item() if hasattr(v, "item") else v for k, v in values.items()}


def run_command(manifest: dict[str, Any], best: dict[str, Any]) -> str:
    """The `python -m fmnist_lib run` command that repeats the best point as a single run."""
    args = ["python -m fmnist_lib run", f"--profile {manifest['profile']}"]
    args += [f"-p {key} {value}" for key, value in best["parameters"].items()]
    args.append(f"--models {best['model']}")
    return " ".join(args)


def plot_accuracy_by_parameter(table, varied: list[str]):
    """Validation and test accuracy of every point against each varied parameter."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    done = table[table["status"] == "done"].reset_index()
    long = done.melt(
        id_vars=[*varied, "model"],
        value_vars=["val accuracy", "test accuracy"],
        var_name="split",
        value_name="accuracy",
    )
    long["series"] = long["model"] + ", " + long["split"].str.replace(" accuracy", "")
    fig, axes = plt.subplots(1, len(varied), figsize=(4.5 * len(varied), 3.6), squeeze=False)
    for ax, key in zip(axes[0], varied, strict=True):
        long[key] = long[key].astype(str)
        order = [str(v) for v in dict.fromkeys(done[key])]
        sns.pointplot(long, x=key, y="accuracy", hue="series", order=order, ax=ax, errorbar=None)
        sns.stripplot(
            long,
            x=key,
            y="accuracy",
            hue="series",
            order=order,
            ax=ax,
            alpha=0.4,
            legend=False,
            dodge=False,
        )
        ax.set_title(f"accuracy against {key}")
    return fig


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


if __name__ == "__main__":
    sys.exit(point_main(sys.argv[1:]))
