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
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def make_lab(tmp_path: Path, **extra_env: str) -> Iterator[tuple[str, str, Path]]:
    """`make lab` on a free port, as a new user would start it: yields (base URL, token, log);
    stopped (make and JupyterLab, one process group) on the way out."""
    port, log = free_port(), tmp_path / "lab.log"
    env = {k: v for k, v in os.environ.items() if k != "JUPYTER_TOKEN"}  # make draws one
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")
    env["JUPYTERLAB_SETTINGS_DIR"] = str(tmp_path / "user-settings")  # a new user's: none
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(tmp_path / "workspaces")
    env.update(extra_env)
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
        base = f"http://localhost:{port}"
        wait_for_json(f"{base}/api/status?token={found[1]}", proc, log)
        yield base, found[1], log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


@pytest.mark.slow
def test_make_lab_serves_the_project_kernel_at_the_url_it_prints(tmp_path):
    before = git_status()
    with make_lab(tmp_path) as (base, token, log):
        api = f"{base}/api/kernelspecs?token={token}"
        with urllib.request.urlopen(api, timeout=10) as response:
            specs = json.load(response)
        with urllib.request.urlopen(
            f"{base}/lab/api/settings/{DOCMANAGER}?token={token}", timeout=10
        ) as response:
            docmanager = json.load(response)
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


# Every code cell of the open notebook has run: an execution count, none still queued ([*]).
ALL_RUN_JS = """() => {
  const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
    .map(p => p.textContent.trim());
  return prompts.length > 0 && prompts.every(p => /^\\[\\d+\\]:$/.test(p));
}"""


@pytest.mark.slow
def test_run_all_in_make_lab_leaves_the_committed_notebook_alone(tmp_path):
    """A new user opens 02_preprocessing (a notebook that writes outputs and figures in
    seconds) under `make lab`, runs every cell and waits: the outputs go to
    runs/interactive/, and the committed notebook is not written, even with autosave's
    interval at 2 s (its on/off switch left at `make lab`'s default)."""
    from fmnist_lib import slides

    missing = slides.browser_missing()
    if missing:
        pytest.skip(f"the browser test needs Playwright and chromium: {missing}")
    from playwright.sync_api import sync_playwright

    notebook = PROJ_ROOT / "notebooks" / "02_preprocessing.ipynb"
    committed, before = notebook.read_bytes(), git_status()
    user = tmp_path / "user-settings" / "@jupyterlab" / "docmanager-extension"
    user.mkdir(parents=True)
    (user / "plugin.jupyterlab-settings").write_text(json.dumps({"autosaveInterval": 2}))
    runs = tmp_path / "runs"
    try:
        with make_lab(tmp_path, FMNIST_RUNS_DIR=str(runs)) as (base, token, log):
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=slides.CHROMIUM, args=slides.CHROMIUM_ARGS
                )
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(f"{base}/lab/tree/02_preprocessing.ipynb?token={token}")
                page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=120_000)
                page.wait_for_selector("text=Python (fmnist)", timeout=120_000)
                page.get_by_role("menuitem", name="Run", exact=True).click()
                page.locator("li[data-command='runmenu:run-all']").click()
                page.wait_for_function(ALL_RUN_JS, timeout=540_000, polling=1000)
                page.wait_for_timeout(6_000)  # three autosave intervals, were autosave on
                dirty = page.evaluate("document.querySelector('.jp-mod-dirty') !== null")
                browser.close()
        assert dirty, "the notebook ran but its tab is not marked unsaved"
        assert notebook.read_bytes() == committed
        assert git_status() == before
        metrics = json.loads((runs / "interactive" / "metrics.json").read_text())
        assert "preprocessing" in metrics
        assert list((runs / "interactive" / "figures").glob("preprocess_*.png"))
    finally:
        if notebook.read_bytes() != committed:
            notebook.write_bytes(committed)  # a failure must not leave the checkout changed
