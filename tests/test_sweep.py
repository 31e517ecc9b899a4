"""fmnist_lib.sweep and `python -m fmnist_lib sweep`: grids, validation, real Dask, resume.

The sweeps run for real: a LocalCluster of two worker processes (one of which the test kills
mid-sweep), then a scheduler and a worker started as separate processes on loopback. Progress
is logged; where the command line shows it is its own business, so these tests read the
manifest, and the logged lines in-process.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from fmnist_lib import config, pipeline, sweep, sweep_report

CLI = [sys.executable, "-m", "fmnist_lib", "sweep"]
TINY = {  # two notebooks, the dense baseline, one epoch on 600 images
    "profile": "smoke",
    "notebooks": ["02_preprocessing", "03_training"],
    "models": ["mlp"],
    "parameters": {"N_TRAIN": 600, "N_TEST": 200, "EPOCHS": 1},
}


def write_grid(folder: Path, name: str, vary: dict, **changes) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**TINY, **changes, "vary": vary}, sort_keys=False))
    return path


def env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "FMNIST_RUNS_DIR": str(tmp / "runs"), "TF_CPP_MIN_LOG_LEVEL": "2"}


def cli(tmp: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args],
        cwd=config.PROJ_ROOT,
        env=env(tmp),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def only_sweep_dir(root: Path) -> Path:
    (sweep_dir,) = [p for p in root.iterdir() if p.is_dir()]
    return sweep_dir


def points(sweep_dir: Path) -> dict[str, dict]:
    return {p["id"]: p for p in json.loads((sweep_dir / "sweep.json").read_text())["points"]}


def steps(run_dir: Path) -> dict[str, str]:
    """Step name -> status from a run folder's `run.json` (empty before it exists)."""
    path = run_dir / "run.json"
    run = json.loads(path.read_text()) if path.exists() else {}
    return {s["name"]: s["status"] for s in run.get("steps", [])}


def mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def processes_in(folder: Path) -> list[int]:
    """Live processes whose working folder or command line names `folder`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if cwd.startswith(str(folder)) or str(folder) in cmdline:
            found.append(int(proc.name))
    return found


# --- grids and validation --------------------------------------------------------------


def test_grid_is_the_cartesian_product_with_readable_point_ids():
    grid = sweep.load_grid(config.PARAMS_DIR / "sweeps" / "smoke.yaml")
    assert grid.profile == "smoke" and grid.models == ["mlp"]
    assert [p["id"] for p in sweep.validate(grid)] == [
        "p00_LEARNING_RATE-0.001_SEED-1",
        "p01_LEARNING_RATE-0.001_SEED-2",
        "p02_LEARNING_RATE-0.003_SEED-1",
        "p03_LEARNING_RATE-0.003_SEED-2",
    ]


def test_a_grid_can_run_only_some_notebooks():
    steps = pipeline.plan("smoke", models=["mlp"], notebooks=["02_preprocessing", "03_training"])
    assert [s.name for s in steps] == ["02_preprocessing", "03_training_mlp"]
    with pytest.raises(pipeline.ParameterError, match="unknown notebook '03_train'"):
        pipeline.plan("smoke", notebooks=["03_train"])


def test_every_example_grid_is_valid():
    grids = sorted((config.PARAMS_DIR / "sweeps").glob("*.yaml"))
    assert grids
    for path in grids:
        assert sweep.validate(sweep.load_grid(path)), path


def test_sweep_id_follows_the_grid_content(tmp_path):
    a = write_grid(tmp_path, "g", {"SEED": [1, 2]})
    first = sweep.sweep_id(sweep.load_grid(a))
    assert first.startswith("g-") and sweep.sweep_id(sweep.load_grid(a)) == first
    write_grid(tmp_path, "g", {"SEED": [1, 3]})
    assert sweep.sweep_id(sweep.load_grid(a)) != first


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"vary": {}}, "`vary` must map"),
        ({"vary": {"SEED": []}}, "SEED needs a non-empty list"),
        ({"vary": {"EPOCHS": [1]}}, "EPOCHS is both fixed and varied"),
        ({"colour": "red"}, "unknown key 'colour'"),
        ({"models": "mlp"}, "`models` must be a non-empty list"),
    ],
)
def test_grid_structure_errors(tmp_path, change, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**TINY, "vary": {"SEED": [1]}, **change}))
    with pytest.raises(pipeline.ParameterError, match=message):
        sweep.load_grid(path)


def test_bad_value_names_its_point(tmp_path):
    grid = sweep.load_grid(write_grid(tmp_path, "g", {"SEED": [1, 2], "BATCH_SIZE": [32, "big"]}))
    with pytest.raises(pipeline.ParameterError) as info:
        sweep.validate(grid)
    msg = str(info.value)
    assert "point p01_SEED-1_BATCH_SIZE-big" in msg
    assert "BATCH_SIZE: expected int, got 'big'" in msg


@pytest.mark.parametrize(
    ("vary", "ids"),
    [
        ({"SEED": [1, 1]}, ["p00_SEED-1"]),
        ({"LEARNING_RATE": [0.001, 1e-3, "0.0010"]}, ["p00_LEARNING_RATE-0.001"]),
        ({"SEED": [2, 1, 2], "EPOCHS": [1, 1]}, ["p00_SEED-2_EPOCHS-1", "p02_SEED-1_EPOCHS-1"]),
    ],
)
def test_equivalent_points_run_once(tmp_path, caplog, vary, ids):
    """Issue 23: `SEED: [1, 1]` ran the same run twice."""
    fixed = {k: v for k, v in TINY["parameters"].items() if k not in vary}
    grid = sweep.load_grid(write_grid(tmp_path, "g", vary, parameters=fixed))
    caplog.set_level(logging.INFO, logger="fmnist_lib.sweep")
    assert [p["id"] for p in sweep.validate(grid)] == ids
    assert all("is the same run as p0" in r.getMessage() for r in caplog.records)
    assert len(caplog.records) == len(grid.points()) - len(ids)


def test_an_interrupted_sweep_is_recorded_interrupted(tmp_path, monkeypatch):
    """Ctrl-C or SIGTERM during the points left `sweep.json` at `running`."""
    import contextlib

    def stopped(*args):
        raise pipeline.Terminated()

    monkeypatch.setattr("fmnist_lib.data.load_fashion_mnist", lambda: None)  # not needed here
    monkeypatch.setattr(sweep.dispatch, "dask_client", lambda *a: contextlib.nullcontext())
    monkeypatch.setattr(sweep, "execute_points", stopped)
    grid = write_grid(tmp_path, "g", {"SEED": [1, 2]})
    with pytest.raises(pipeline.Terminated, match="unfinished points are recorded failed"):
        sweep.run_sweep(grid, workers=1, sweeps_dir=tmp_path / "sweeps", report=False)
    manifest = json.loads(next((tmp_path / "sweeps").glob("*/sweep.json")).read_text())
    assert manifest["status"] == "interrupted" and "finished" in manifest["invocations"][-1]


@pytest.mark.parametrize("damage", ["{not json", "null", '{"points": 3}', "\udcff"])
def test_a_damaged_manifest_or_point_record_is_one_line_not_a_traceback(tmp_path, damage):
    grid = sweep.load_grid(write_grid(tmp_path, "g", {"SEED": [1]}))
    points = sweep.validate(grid)
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "p00_SEED-1").mkdir()
    raw = damage.encode(errors="surrogateescape")
    (tmp_path / "s" / "p00_SEED-1" / "run.json").write_bytes(raw)  # a point's record: rerun
    done = {"points": [{**points[0], "run_dir": "p00_SEED-1", "status": "done"}]}
    (tmp_path / "s" / sweep.MANIFEST).write_text(json.dumps(done))
    assert sweep.open_manifest(grid, tmp_path / "s", points)["points"][0]["status"] == "pending"
    (tmp_path / "s" / sweep.MANIFEST).write_bytes(raw)
    with pytest.raises(pipeline.RunError, match=r"sweep.json is damaged \(.*\); move it away"):
        sweep.open_manifest(grid, tmp_path / "s", points)


def test_typo_fails_the_whole_sweep_before_anything_runs(tmp_path):
    grid = write_grid(tmp_path, "typo", {"LEARNIG_RATE": [0.001, 0.003]})
    out = cli(tmp_path, "--grid", str(grid), "--sweeps-dir", str(tmp_path / "sweeps"))
    assert out.returncode == 2, out.stderr[-3000:]
    assert "point p00_LEARNIG_RATE-0.001" in out.stderr
    assert "unknown parameter 'LEARNIG_RATE'" in out.stderr
    assert not (tmp_path / "sweeps").exists() and not (tmp_path / "runs").exists()


def test_a_sweep_ends_with_its_best_point_and_the_command_that_repeats_it(tmp_path):
    manifest = sweep.read_manifest(sweep.DEMO_DIR)
    lines = sweep.closing_lines(sweep.DEMO_DIR, manifest, 754.3)
    assert lines == [
        f"[sweep] {manifest['sweep_id']} finished in 12.6 min: 6 of 6 points done -> "
        f"{sweep.DEMO_DIR}",
        "[sweep] best point: p04_LEARNING_RATE-0.003_SEED-1, mlp: validation accuracy 81.00%, "
        "test accuracy 80.80%",
        "[sweep] repeat it as one run: python -m fmnist_lib run --profile smoke -p EPOCHS 5 "
        "-p LEARNING_RATE 0.003 -p SEED 1 --models mlp",
    ]
    empty = {**manifest, "points": [{**p, "status": "failed"} for p in manifest["points"]]}
    (tmp_path / "sweep.json").write_text(json.dumps(empty))
    assert sweep.closing_lines(tmp_path, empty, 5)[1:] == [
        "[sweep] no point of this sweep has finished: nothing to compare"
    ]


def test_progress_line_counts_the_points_by_status():
    manifest = {"points": [{"status": s} for s in ("done", "running", "done", "failed")]}
    assert sweep.progress_line(manifest, 192, "p02 done in 41 s") == (
        "[sweep] 2/4 done, 1 running, 1 failed, 00:03:12 elapsed - p02 done in 41 s"
    )


def test_a_finished_sweep_logs_what_it_skipped_and_its_best_point(tmp_path, caplog, monkeypatch):
    """The demo sweep's records as a finished lr_seed sweep: nothing runs, the lines are logged."""
    grid = config.PARAMS_DIR / "sweeps" / "lr_seed.yaml"
    sweep_dir = tmp_path / sweep.sweep_id(sweep.load_grid(grid))
    shutil.copytree(sweep.DEMO_DIR, sweep_dir)
    for run_dir in sweep_dir.glob("p*"):
        (run_dir / "run.json").write_text('{"status": "done"}')
    monkeypatch.setattr("fmnist_lib.data.load_fashion_mnist", lambda: None)  # not needed here
    caplog.set_level(logging.INFO, logger="fmnist_lib.sweep")
    manifest = sweep.run_sweep(grid, workers=2, sweeps_dir=tmp_path, report=False)
    assert manifest["status"] == "done" and manifest["invocations"][-1]["points"] == 0
    assert [r.name for r in caplog.records] == ["fmnist_lib.sweep"] * 4
    lines = caplog.messages
    assert lines[0] == (
        f"[sweep] {sweep_dir.name}: 6 points, 6 already done, 0 to run on "
        f"LocalCluster of 2 worker processes -> {sweep_dir}"
    )
    assert lines[1].startswith(f"[sweep] {sweep_dir.name} finished in ")
    assert lines[2].startswith("[sweep] best point: p04_LEARNING_RATE-0.003_SEED-1, mlp")
    assert lines[3].startswith("[sweep] repeat it as one run: python -m fmnist_lib run")


# --- a LocalCluster of two workers, one killed mid-sweep, then the re-run ----------------


@pytest.fixture(scope="module")
def killed_and_rerun(tmp_path_factory):
    """Four points on two workers; kill the worker of the first point that starts training.

    Returns what the test functions check: both invocations, the killed point, the finished
    points' file times between the runs, and whether the killed point's processes lived on.
    """
    tmp = tmp_path_factory.mktemp("sweep")
    root = tmp / "sweeps"
    grid = config.PARAMS_DIR / "sweeps" / "smoke.yaml"
    args = ["--grid", str(grid), "--workers", "2", "--sweeps-dir", str(root)]
    proc = subprocess.Popen(
        [*CLI, *args, "--no-report"],
        cwd=config.PROJ_ROOT,
        env=env(tmp),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killed, deadline = None, time.monotonic() + 420
    while killed is None and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
        manifest = next(root.glob("*/sweep.json"), None)
        for point in points(manifest.parent).values() if manifest else []:
            training = steps(manifest.parent / point["id"]).get("03_training_mlp")
            if point["status"] == "running" and training == "running":
                os.kill(point["worker_pid"], signal.SIGKILL)
                killed = point["id"]
                break
    stdout, stderr = proc.communicate(timeout=600)
    assert killed, "no point reached 03_training while the test watched\n" + stdout + stderr
    sweep_dir = only_sweep_dir(root)
    orphans = processes_in(sweep_dir / killed)
    first = {"returncode": proc.returncode, "stdout": stdout, "stderr": stderr}
    first["points"] = points(sweep_dir)
    kept = {pid: mtimes(sweep_dir / pid) for pid in first["points"] if pid != killed}
    second = cli(tmp, *args)
    return {
        "sweep_dir": sweep_dir,
        "killed": killed,
        "orphans": orphans,
        "first": first,
        "second": second,
        "kept_before": kept,
        "kept_after": {pid: mtimes(sweep_dir / pid) for pid in kept},
    }


@pytest.mark.slow
def test_killed_worker_fails_only_its_point(killed_and_rerun):
    first, killed = killed_and_rerun["first"], killed_and_rerun["killed"]
    assert first["returncode"] == 1, first["stderr"][-3000:]
    point = first["points"][killed]
    assert point["status"] == "failed" and "its Dask worker died (KilledWorker" in point["error"]
    assert point["notebook"].endswith(f"{killed}/03_training_mlp.ipynb")
    others = [p for pid, p in first["points"].items() if pid != killed]
    assert [p["status"] for p in others] == ["done"] * 3  # the others went on
    assert f"fmnist: point {killed} failed" in first["stderr"]
    assert killed_and_rerun["orphans"] == []  # the point's process and kernel died with it


@pytest.mark.slow
def test_rerun_completes_the_missing_point_only(killed_and_rerun):
    second, killed = killed_and_rerun["second"], killed_and_rerun["killed"]
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert killed_and_rerun["kept_after"] == killed_and_rerun["kept_before"]  # untouched
    sweep_dir = killed_and_rerun["sweep_dir"]
    manifest = json.loads((sweep_dir / "sweep.json").read_text())
    assert manifest["invocations"][-1]["points"] == 1
    assert {p["id"]: p["attempts"] for p in manifest["points"]} == {
        pid: 2 if pid == killed else 1 for pid in killed_and_rerun["first"]["points"]
    }
    run = json.loads((sweep_dir / killed / "run.json").read_text())
    assert run["status"] == "done" and len(run["resumed"]) == 1  # resumed in its own folder
    log = (sweep_dir / "logs" / f"{killed}.log").read_text()
    assert "02_preprocessing: already done, skipped" in log


@pytest.mark.slow
def test_four_points_on_a_local_cluster_of_two_workers(killed_and_rerun):
    sweep_dir = killed_and_rerun["sweep_dir"]
    manifest = json.loads((sweep_dir / "sweep.json").read_text())
    assert manifest["status"] == "done" and manifest["sweep_id"] == sweep_dir.name
    assert [inv["scheduler"] for inv in manifest["invocations"]] == [
        "LocalCluster of 2 worker processes"
    ] * 2
    assert {p["id"]: p["parameters"] for p in manifest["points"]} == {
        "p00_LEARNING_RATE-0.001_SEED-1": {"LEARNING_RATE": 0.001, "SEED": 1},
        "p01_LEARNING_RATE-0.001_SEED-2": {"LEARNING_RATE": 0.001, "SEED": 2},
        "p02_LEARNING_RATE-0.003_SEED-1": {"LEARNING_RATE": 0.003, "SEED": 1},
        "p03_LEARNING_RATE-0.003_SEED-2": {"LEARNING_RATE": 0.003, "SEED": 2},
    }
    for point in manifest["points"]:
        run_dir = sweep_dir / point["run_dir"]
        assert point["status"] == "done" and point["error"] is None
        assert sorted(p.name for p in run_dir.glob("*.ipynb")) == [
            "02_preprocessing.ipynb",
            "03_training_mlp.ipynb",
        ]
        trained = json.loads((run_dir / "metrics.json").read_text())["training"]
        assert list(trained) == ["mlp"] and trained["mlp"]["n_train"] == 540  # 600 less 10%
        assert (
            trained["mlp"]["train_config"]["learning_rate"] == point["parameters"]["LEARNING_RATE"]
        )

    table = sweep_report.comparison_table(sweep_dir, manifest)
    assert list(table.index) == [p["id"] for p in manifest["points"]]
    assert table[["LEARNING_RATE", "SEED"]].values.tolist() == [
        [0.001, 1],
        [0.001, 2],
        [0.003, 1],
        [0.003, 2],
    ]
    assert table["test accuracy"].between(0.1, 1).all() and (table["epochs"] == 1).all()
    assert (sweep_dir / "sweep_comparison.csv").is_file()  # the report ran after the re-run
    assert (sweep_dir / "06_sweep_results.ipynb").is_file()
    assert (sweep_dir / "figures" / "sweep_accuracy_by_parameter.png").is_file()
    best = sweep_report.best_configuration(table, manifest)
    assert best["val accuracy"] == table["val accuracy"].max()
    assert best["parameters"]["EPOCHS"] == 1 and best["parameters"]["N_TRAIN"] == 600


# --- an existing cluster: scheduler and worker as separate processes ----------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def external_sweep(tmp_path_factory):
    """`dask scheduler` and `dask worker` on loopback; a sweep with a point that fails."""
    from distributed import Client

    tmp = tmp_path_factory.mktemp("external")
    address = f"tcp://127.0.0.1:{free_port()}"
    dask = [sys.executable, "-m", "dask"]
    logs = {name: (tmp / f"{name}.log").open("w") for name in ("scheduler", "worker")}
    started = [
        subprocess.Popen(
            [*dask, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1]]
            + ["--no-dashboard"],
            stdout=logs["scheduler"],
            stderr=subprocess.STDOUT,
            cwd=tmp,
        )
    ]
    try:
        started.append(
            subprocess.Popen(
                [*dask, "worker", address, "--nthreads", "2", "--nworkers", "1"]
                + ["--host", "127.0.0.1", "--no-dashboard"],
                stdout=logs["worker"],
                stderr=subprocess.STDOUT,
                cwd=tmp,  # not the repository: the worker finds fmnist_lib as installed
            )
        )
        with Client(address, timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
            workers = list(client.scheduler_info()["workers"])
        # 535 of the 540 training images leaves 5 to split off, fewer than the 10 classes:
        # 03_training fails inside (the limit is checked against the data, not yet against
        # the split that 02 makes).
        grid = write_grid(tmp, "val", {"TRAIN_LIMIT": [0, 535]})
        out = cli(tmp, "--grid", str(grid), "--scheduler", address, "--no-report")
        sweep_dir = only_sweep_dir(tmp / "runs" / "sweeps")
        return {
            "address": address,
            "workers": workers,
            "out": out,
            "sweep_dir": sweep_dir,
            "tmp": tmp,
        }
    finally:
        for proc in reversed(started):
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for fh in logs.values():
            fh.close()


@pytest.mark.slow
def test_sweep_runs_on_an_existing_cluster(external_sweep):
    sweep_dir = external_sweep["sweep_dir"]
    manifest = json.loads((sweep_dir / "sweep.json").read_text())
    assert manifest["invocations"][0]["scheduler"] == external_sweep["address"]
    assert {p["worker"] for p in manifest["points"]} <= set(external_sweep["workers"])
    assert sweep_dir.parent == external_sweep["tmp"] / "runs" / "sweeps"  # FMNIST_RUNS_DIR


@pytest.mark.slow
def test_failed_point_is_recorded_and_the_others_finish(external_sweep):
    out, sweep_dir = external_sweep["out"], external_sweep["sweep_dir"]
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]
    found = points(sweep_dir)
    good, bad = found["p00_TRAIN_LIMIT-0"], found["p01_TRAIN_LIMIT-535"]
    assert good["status"] == "done" and bad["status"] == "failed"
    assert "03_training_mlp failed in cell [" in bad["error"]
    assert "ValueError" in bad["error"]  # raised inside the notebook
    assert Path(bad["notebook"]) == sweep_dir / bad["run_dir"] / "03_training_mlp.ipynb"
    assert Path(bad["notebook"]).is_file()  # the partly executed notebook is kept
    assert "fmnist: point p01_TRAIN_LIMIT-535 failed: 03_training_mlp failed" in out.stderr
    table = sweep_report.comparison_table(
        sweep_dir, json.loads((sweep_dir / "sweep.json").read_text())
    )
    assert table.loc["p01_TRAIN_LIMIT-535", "status"] == "failed"
    assert table.loc["p00_TRAIN_LIMIT-0", "test accuracy"] > 0.1
