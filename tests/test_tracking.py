"""fmnist_lib.tracking and `python -m fmnist_lib tensorboard`: a run's logs served, read back."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from fmnist_lib import tracking
from fmnist_lib.__main__ import main

LOSSES = [0.9, 0.5, 0.25]  # planted: the curve TensorBoard must give back


def plant_logs(run_dir: Path) -> None:
    """A run folder with one model's logs as Keras's TensorBoard callback lays them out."""
    import tensorflow as tf

    for split in ("train", "validation"):
        writer = tf.summary.create_file_writer(str(run_dir / "models/cnn/main/tensorboard" / split))
        with writer.as_default():
            for epoch, loss in enumerate(LOSSES):
                tf.summary.scalar("epoch_loss", loss * (1 if split == "train" else 2), step=epoch)
        writer.close()


def test_log_dirs_are_the_folders_with_event_files(tmp_path):
    for folder in ("models/cnn/main/tensorboard/train", "models/mlp/main/tensorboard/train"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "events.out.tfevents.1.host.v2").write_bytes(b"")
    (tmp_path / "models/mlp/main/checkpoint").mkdir(parents=True)  # no events: not a log
    assert [p.relative_to(tmp_path).as_posix() for p in tracking.log_dirs(tmp_path)] == [
        "models/cnn/main/tensorboard/train",
        "models/mlp/main/tensorboard/train",
    ]


def test_a_run_without_logs_is_refused_naming_the_folder(tmp_path, capsys):
    (tmp_path / "models" / "cnn").mkdir(parents=True)
    assert main(["tensorboard", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith(f"fmnist: tensorboard: {tmp_path}: no TensorBoard logs") and "\n" not in err
    )


def test_without_tensorboard_one_line_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # find_spec: not importable
    assert tracking.tensorboard_missing() is not None
    assert main(["tensorboard", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    missing = "TensorBoard is not installed in this environment"
    assert err == f"fmnist: tensorboard: {missing}: {tracking.INSTALL_HINT}"


def test_an_unknown_run_id_is_refused(tmp_path, capsys):
    assert main(["tensorboard", "no-such-run", "--runs-dir", str(tmp_path)]) == 2
    assert "no run folder or run id 'no-such-run'" in capsys.readouterr().err


def read_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


@pytest.mark.slow
def test_tensorboard_command_serves_the_run_logs_at_the_url_it_prints(tmp_path):
    pytest.importorskip("tensorboard")
    run_dir = tmp_path / "20260101-000000-smoke-abcdef"
    plant_logs(run_dir)
    log = tmp_path / "tensorboard.log"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-m", "fmnist_lib", "tensorboard", run_dir.name, "--port", "0"]
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*command, "--runs-dir", str(tmp_path)], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    try:
        deadline = time.monotonic() + 120
        while not (found := re.search(r"\n    (http://\S+/)\n", log.read_text())):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no URL printed:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        url = found[1]
        runs = read_json(url + "data/runs")
        train = "cnn/main/tensorboard/train"
        assert sorted(runs) == [train, "cnn/main/tensorboard/validation"]
        query = urllib.parse.urlencode({"run": train, "tag": "epoch_loss"})
        points = read_json(f"{url}data/plugin/scalars/scalars?{query}")
        assert [step for _, step, _ in points] == [0, 1, 2]
        assert [value for _, _, value in points] == pytest.approx(LOSSES)
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    assert code == 0, log.read_text()[-3000:]
    assert "Ctrl-C stops it" in log.read_text()


def test_the_install_hint_names_the_pinned_version():
    import tomllib

    from fmnist_lib import config

    project = tomllib.loads((config.PROJ_ROOT / "pyproject.toml").read_text())["project"]
    (pin,) = [d for d in project["dependencies"] if d.startswith("tensorboard==")]
    assert tracking.INSTALL_HINT.startswith(f"pip install {pin} ")
