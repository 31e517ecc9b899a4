"""Sweep points on Dask: each task runs one point's pipeline in a child process.

Each Dask task runs its point in a child process (`python -m fmnist_lib.dispatch TASK`), not in
the worker itself. The kernels papermill starts are processes either way, but validating a
point imports TensorFlow and Keras, and `run_pipeline` logs through fmnist_lib's and
papermill's global loggers and records `sys.argv`. In a child, a point's memory is returned when
it ends, its output goes to its own log, a crash in native code fails the point rather than the
worker, and workers with several threads stay safe. The child exits when its worker dies, and
its kernel follows.

This module knows tasks (plain JSON, see `sweep.point_task`) and Dask, not the manifest: the
sweep hears of each start and end through callbacks.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fmnist_lib import config, pipeline, records

# Our own LocalCluster does not retry a point whose worker died: it is recorded as failed,
# and the next run of the sweep resumes it in its run folder.
LOCAL_DASK_CONFIG = {"distributed.scheduler.allowed-failures": 0}


# --- one point, on a worker ------------------------------------------------------------


def failure(run_dir: Path, fallback: str) -> dict[str, Any]:
    """The error and notebook of a point that did not finish, from its `run.json`."""
    try:
        run = records.read_json(run_dir / "run.json", {})
    except (OSError, ValueError):  # unreadable or damaged: the fallback says what is known
        run = {}
    problem = not isinstance(run, dict) or records.run_record_problem(run)
    steps = [] if problem else run.get("steps", [])
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
        out.write(f"==> {dt.datetime.now().isoformat(timespec='seconds')} point {task['id']}\n")
        out.flush()
        proc = subprocess.run(
            [sys.executable, "-m", "fmnist_lib.dispatch", json.dumps(task)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=config.PROJ_ROOT,
            env=env,
            check=False,
        )
    seconds = round(time.perf_counter() - start, 1)
    if proc.returncode == 0 and records.run_status(run_dir / "run.json") == "done":
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
    """`python -m fmnist_lib.dispatch TASK_JSON`: one point's pipeline, resumed if it started."""
    task = json.loads(argv[0])
    config.log_to_console()  # the pipeline's progress into this point's log file
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
        with pipeline.sigterm_as_interrupt():  # SIGTERM: the point's run is interrupted
            pipeline.run_pipeline(
                task["profile"],
                task["overrides"],
                models=task["models"],
                notebooks=task["notebooks"],
                run_dir=None if started else run_dir,
                resume=run_dir if started else None,
            )
    except (Exception, KeyboardInterrupt) as exc:  # known failures: one line, no traceback wall
        code = pipeline.exit_code(exc)
        if code is None:
            raise
        return code
    return 0


# --- the points, from the client ---------------------------------------------------------


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


def outcome(future: Any, run_dir: Path) -> dict[str, Any]:
    """What a finished future says about its point; a failed Dask task reads its `run.json`."""
    if future.status == "finished":
        return future.result()
    exc = future.exception()
    name = type(exc).__name__
    reason = "its Dask worker died" if name == "KilledWorker" else "the Dask task failed"
    return failure(run_dir, f"{reason} ({name}: {exc})")


def run_tasks(
    client: Any,
    tasks: list[dict[str, Any]],
    on_start: Callable[[dict[str, Any]], None],
    on_finish: Callable[[dict[str, Any], dict[str, Any]], None],
) -> None:
    """Run every task with `run_point`; call `on_start(event)` and `on_finish(task, outcome)`.

    The callbacks run in this thread, one at a time, as Dask reports: `event` holds the task's
    `id`, its `worker` and the worker's `pid`.
    """
    topic = f"fmnist-points-{uuid.uuid4()}"
    events: queue.SimpleQueue = queue.SimpleQueue()
    client.subscribe_topic(topic, lambda event: events.put(("started", event[1])))
    waiting, running = list(tasks), {}

    def submit_more() -> None:
        # Kept: Dask sends a group this small (up to twice the cluster's threads) to workers at
        # once, so a point would queue behind another while a worker idles, and a dead worker
        # would fail every point it holds. Only as many go out as the cluster has threads.
        slots = max(1, sum(client.nthreads().values())) - len(running)
        for task in waiting[: max(0, slots)]:
            waiting.remove(task)
            future = client.submit(run_point, task, topic, key=f"fmnist-point-{uuid.uuid4()}")
            running[future.key] = task
            future.add_done_callback(lambda done: events.put(("finished", done)))

    try:
        submit_more()
        while running:
            # Dask's callbacks feed one queue: this blocks without polling, Ctrl-C still stops it.
            kind, item = events.get()
            if kind == "started":
                on_start(item)
                continue
            task = running.pop(item.key)
            on_finish(task, outcome(item, Path(task["run_dir"])))
            submit_more()
    finally:
        client.unsubscribe_topic(topic)


if __name__ == "__main__":
    sys.exit(point_main(sys.argv[1:]))
