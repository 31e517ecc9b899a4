"""Shared fixtures: real data (skipped only outside CI when absent) and tiny IDX folders."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fmnist_lib import config, data


def _real_data() -> data.FashionMNIST | None:
    try:
        return data.load_fashion_mnist(allow_download=False)
    except data.DataError:
        return None


_REAL = _real_data()


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


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """One real `run --profile smoke` (every notebook, three models) shared by the tests that
    read a finished run: (run folder, stdout, stderr)."""
    root = tmp_path_factory.mktemp("smoke-runs")
    out = subprocess.run(
        [sys.executable, "-m", "fmnist_lib", "run", "--profile", "smoke", "--runs-dir", str(root)],
        cwd=config.PROJ_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (run_dir,) = root.iterdir()
    return run_dir, out.stdout, out.stderr
