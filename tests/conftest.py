"""Shared fixtures: real data (skipped only outside CI when absent) and tiny IDX folders."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from fmnist_lib import config, data

# No test downloads weights: ImageNet's file comes from a (planted) Keras cache or not at all
# (`models.NO_DOWNLOAD`; named here without importing Keras). Set in this process's
# environment, so the notebook kernels and pipelines the tests start inherit it.
os.environ.setdefault("FMNIST_NO_DOWNLOAD", "1")


def _real_data() -> data.FashionMNIST | None:
    try:
        return data.load_fashion_mnist(allow_download=False)
    except data.DataError:
        return None


_REAL = _real_data()


@pytest.fixture(autouse=True)
def _backend_unchanged():
    """Every kernel a later test starts inherits this process's KERAS_BACKEND: no test may
    leave it changed."""
    before = os.environ.get("KERAS_BACKEND")
    yield
    assert os.environ.get("KERAS_BACKEND") == before, "this test left KERAS_BACKEND changed"


@pytest.fixture(scope="session")
def real_ds() -> data.FashionMNIST:
    """The real, verified data set; CI must have it, elsewhere its absence skips."""
    if _REAL is None:
        if os.environ.get("CI"):
            pytest.fail("real Fashion-MNIST files missing in CI: `make data` should install them")
        pytest.skip("real Fashion-MNIST files not installed (run `make data`)")
    return _REAL


@pytest.fixture
def real_dir(tmp_path: Path, real_ds: data.FashionMNIST) -> Path:
    """A private copy of the four real files (symlinks), safe to corrupt one by one."""
    folder = tmp_path / "real"
    folder.mkdir()
    for key, name in data.FILES.items():
        (folder / name).symlink_to(real_ds.files[key].path)
    return folder


def replace_file(folder: Path, key: str, raw: bytes) -> Path:
    """Swap one symlinked file of `real_dir` for a gzip file holding `raw`."""
    import gzip

    path = folder / data.FILES[key]
    path.unlink()
    with gzip.open(path, "wb", compresslevel=1) as fh:
        fh.write(raw)
    return path


def read_raw(path: str | Path) -> bytes:
    import gzip

    with gzip.open(path, "rb") as fh:
        return fh.read()


@pytest.fixture
def tiny_dir(tmp_path: Path) -> Path:
    """Synthetic IDX files: 20 train and 10 test images with known labels."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 20), ("test", 10)):
        data.write_idx_gz(
            folder / data.FILES[f"{split}_images"],
            rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
        )
        data.write_idx_gz(folder / data.FILES[f"{split}_labels"], np.arange(n) % 10)
    return folder


@pytest.fixture
def keras_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty, private KERAS_HOME so no test sees a real cache."""
    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


__all__ = ["replace_file", "read_raw", "shutil"]


# The smoke run is started as soon as the tests that read it are collected, so that it runs
# beside the unit tests rather than before the first test that needs it.
_SMOKE: dict = {}


def _start_smoke_run() -> None:
    root = Path(tempfile.mkdtemp(prefix="fmnist-smoke-runs-"))
    _SMOKE["root"] = root
    _SMOKE["out"] = open(root / "stdout.txt", "w")  # files, not pipes: nobody reads until the end
    _SMOKE["err"] = open(root / "stderr.txt", "w")
    _SMOKE["proc"] = subprocess.Popen(
        [sys.executable, "-m", "fmnist_lib", "run", "--profile", "smoke", "--runs-dir", str(root)],
        cwd=config.PROJ_ROOT,
        stdout=_SMOKE["out"],
        stderr=_SMOKE["err"],
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    if any("smoke_run" in getattr(item, "fixturenames", ()) for item in session.items):
        _start_smoke_run()


def pytest_sessionfinish(session: pytest.Session) -> None:
    proc = _SMOKE.get("proc")
    if proc is not None and proc.poll() is None:  # interrupted: leave no run behind
        proc.kill()


@pytest.fixture(scope="session")
def smoke_run():
    """One real `run --profile smoke` (every notebook, three models) shared by the tests that
    read a finished run: (run folder, stdout, stderr)."""
    if "proc" not in _SMOKE:
        _start_smoke_run()
    _SMOKE["proc"].wait(timeout=1200)
    for handle in (_SMOKE["out"], _SMOKE["err"]):
        handle.close()
    root = _SMOKE["root"]
    stdout = (root / "stdout.txt").read_text()
    stderr = (root / "stderr.txt").read_text()
    assert _SMOKE["proc"].returncode == 0, stdout[-3000:] + stderr[-3000:]
    (run_dir,) = [p for p in root.iterdir() if p.is_dir()]
    return run_dir, stdout, stderr
