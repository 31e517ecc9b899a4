"""Project paths and the one place where random seeds are set."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np

PROJ_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = PROJ_ROOT / "notebooks"
PARAMS_DIR = PROJ_ROOT / "params"
DEFAULT_SEED = 42


def runs_dir() -> Path:
    """Folder that holds one sub-folder per pipeline run (`FMNIST_RUNS_DIR` overrides)."""
    return Path(os.environ.get("FMNIST_RUNS_DIR", PROJ_ROOT / "runs")).resolve()


def cache_dir() -> Path:
    """Folder for derived, re-computable data such as frozen-backbone features."""
    return Path(os.environ.get("FMNIST_CACHE_DIR", PROJ_ROOT / ".cache")).resolve()


def resolve_run_dir(run_dir: str | os.PathLike[str] = "") -> Path:
    """Return the run folder a notebook writes to, creating it.

    An empty value means `runs/interactive`, the folder used when a notebook is
    opened by hand; papermill runs always pass their own folder.
    """
    path = Path(run_dir) if str(run_dir) else runs_dir() / "interactive"
    path = path.resolve()
    path.mkdir(parents=True, exist_ok=True)
    (path / "figures").mkdir(exist_ok=True)
    return path


def set_seeds(seed: int = DEFAULT_SEED) -> int:
    """Seed Python, NumPy and Keras (and through it the backend) from one value."""
    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    import keras

    keras.utils.set_random_seed(seed)
    return seed
