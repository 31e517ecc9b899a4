"""Project paths and the one place where random seeds are set."""

from __future__ import annotations

import os
from pathlib import Path

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
    """Seed Python, NumPy and the Keras backend from one value, and on TensorFlow make its
    ops deterministic: the same run on the same machine gives the same numbers.

    `keras.utils.set_random_seed` seeds Python's `random`, NumPy and the backend.
    `PYTHONHASHSEED` is not set here: it acts only when the interpreter starts.
    """
    import keras

    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    return seed
