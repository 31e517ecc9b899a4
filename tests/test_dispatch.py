"""fmnist_lib.dispatch on a real Dask LocalCluster: each point in a child process, one per thread.

The points here name a profile that does not exist, so each child fails in a second and the
test sees how a failure comes back. The killed worker and the external cluster are exercised
end to end in test_sweep.py.
"""

from __future__ import annotations

from pathlib import Path

from fmnist_lib import dispatch


def failing_task(folder: Path, pid: str) -> dict:
    """A task whose child exits with code 2: its profile does not exist."""
    return {
        "id": pid,
        "profile": "no_such_profile",
        "overrides": {},
        "models": None,
        "notebooks": None,
        "run_dir": str(folder / pid),
        "log": str(folder / "logs" / f"{pid}.log"),
    }


def test_points_go_out_one_per_thread_and_each_failure_comes_back(tmp_path):
    tasks = [failing_task(tmp_path, f"p{i}") for i in range(3)]
    finished, busy = [], []
    with dispatch.dask_client(None, 1) as client:  # one worker, one thread

        def on_finish(task: dict, outcome: dict) -> None:
            busy.append(sum(len(keys) for keys in client.processing().values()))
            finished.append((task["id"], outcome))

        dispatch.run_tasks(client, tasks, on_start=lambda event: None, on_finish=on_finish)
    assert sorted(pid for pid, _ in finished) == ["p0", "p1", "p2"]
    assert busy == [0, 0, 0]  # nothing waits on the worker: the next goes out when one ends
    for pid, outcome in finished:
        assert outcome["status"] == "failed" and outcome["notebook"] is None
        assert outcome["error"].startswith("exit code 2: "), outcome
        assert "no_such_profile" in outcome["error"]
        assert f"point {pid}" in (tmp_path / "logs" / f"{pid}.log").read_text()
