"""The Makefile's `lab` target, started for real: the URL it prints serves the project's kernel,
with autosave off, and leaves the checkout as it was."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from fmnist_lib.config import PROJ_ROOT

DOCMANAGER = "@jupyterlab/docmanager-extension:plugin"  # the plugin owning autosave


def git_status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--ignored=no"],
        cwd=PROJ_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_json(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> dict:
    """GET `url` until it answers, failing with the server's output if it dies or stalls."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.load(response)
        except (urllib.error.URLError, ConnectionError):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer {url}:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)


@pytest.mark.slow
def test_make_lab_serves_the_project_kernel_at_the_url_it_prints(tmp_path):
    port, log = free_port(), tmp_path / "lab.log"
    env = {k: v for k, v in os.environ.items() if k != "JUPYTER_TOKEN"}  # make draws one
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")
    env["JUPYTERLAB_SETTINGS_DIR"] = str(tmp_path / "user-settings")  # a new user's: none
    before = git_status()
    # `-o`: never reinstall the environment the tests run in (`make test` has just set it up).
    command = ["make", "-o", ".venv/.installed", "lab", f"LAB_PORT={port}"]
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*command, "LAB_ARGS=--no-browser"],
            cwd=PROJ_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # make and JupyterLab: one group, stopped together
        )
    try:
        deadline = time.monotonic() + 60
        while not (
            found := re.search(rf"http://localhost:{port}/lab\?token=(\w+)", log.read_text())
        ):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"`make lab` printed no URL:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        api = f"http://localhost:{port}/api/kernelspecs?token={found[1]}"
        specs = wait_for_json(api, proc, log)
        docmanager = wait_for_json(
            f"http://localhost:{port}/lab/api/settings/{DOCMANAGER}?token={found[1]}", proc, log
        )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    fmnist = specs["kernelspecs"]["fmnist"]["spec"]
    assert fmnist["display_name"] == "Python (fmnist)"
    assert Path(fmnist["argv"][0]) == PROJ_ROOT / ".venv" / "bin" / "python"
    said = log.read_text()
    assert ("running as root: passing --allow-root" in said) == (os.geteuid() == 0), said
    assert "Running as root is not recommended" not in said
    with pytest.raises(urllib.error.URLError):  # stopped, and nothing left listening
        urllib.request.urlopen(api, timeout=5)
    # Autosave is off by default (the user's own settings, none here, would still win).
    assert docmanager["schema"]["properties"]["autosave"]["default"] is False
    assert "autosave" not in docmanager["settings"]
    assert "autosave is off" in said
    assert git_status() == before  # nothing of the checkout written
