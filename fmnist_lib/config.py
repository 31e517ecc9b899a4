"""Project paths, the Keras backend where TensorFlow is missing, the console handler for
progress lines, and the one place where random seeds are set."""

from __future__ import annotations

import logging
import os
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent
# The clone this package lives in; `FMNIST_PROJECT_DIR` names one for an installed wheel.
PROJ_ROOT = Path(os.environ.get("FMNIST_PROJECT_DIR") or PACKAGE_DIR.parent).resolve()
NOTEBOOKS_DIR = PROJ_ROOT / "notebooks"
# The pipeline's notebooks, in run order (06_sweep_results reads a sweep, not a run).
NOTEBOOKS = (
    "01_eda",
    "02_preprocessing",
    "03_label_errors",
    "03_training",
    "04_results",
    "05_presentation",
)
PARAMS_DIR = PROJ_ROOT / "params"
DEFAULT_SEED = 42


class CloneRequired(RuntimeError):
    """The command needs the repository's notebooks/ and params/, which are not here."""


def require_clone() -> Path:
    """Return PROJ_ROOT if it holds notebooks/ and params/; raise `CloneRequired` otherwise.

    A wheel ships `fmnist_lib` alone: running the notebooks needs a clone of the repository.
    """
    for folder in (NOTEBOOKS_DIR, PARAMS_DIR):
        if not folder.is_dir():
            raise CloneRequired(
                f"{folder} does not exist: this command runs the notebooks of a clone of the "
                "repository, and fmnist_lib is installed outside one. Clone it and set "
                "FMNIST_PROJECT_DIR=/path/to/clone (on every Dask worker too), or install the "
                "clone with `pip install -e /path/to/clone`."
            )
    return PROJ_ROOT


def choose_backend() -> str:
    """Return the Keras backend, setting `KERAS_BACKEND=jax` where TensorFlow is not installed.

    A `KERAS_BACKEND` the user set wins, and so does a Keras already imported; keras.json is
    not consulted (Keras writes "tensorflow" there on its first import). Set in `os.environ`,
    the choice reaches the notebook kernels and sweep points this process starts.
    """
    if "KERAS_BACKEND" not in os.environ and "keras" not in sys.modules:
        if find_spec("tensorflow") is None and find_spec("jax") is not None:
            os.environ["KERAS_BACKEND"] = "jax"
    return os.environ.get("KERAS_BACKEND", "tensorflow")


choose_backend()  # on import: every notebook and the CLI import config before Keras


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


CONSOLE_HANDLER = "fmnist_lib.console"  # the name of the handler `log_to_console` sets


class _StdoutHandler(logging.StreamHandler):
    """A stream handler on `sys.stdout` as it is at each line (pytest swaps it per test)."""

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _: Any) -> None:  # StreamHandler.__init__ assigns one; sys.stdout rules
        pass


def log_to_console(level: int = logging.INFO) -> logging.Handler:
    """Show `fmnist_lib`'s log lines as plain lines on stdout: the command line, a sweep
    point's process and `03_training` call it, so progress shows where each one prints.

    One handler: a second call replaces the first rather than doubling every line.
    """
    logger = logging.getLogger("fmnist_lib")
    for old in [h for h in logger.handlers if h.get_name() == CONSOLE_HANDLER]:
        logger.removeHandler(old)
    handler = _StdoutHandler()
    handler.set_name(CONSOLE_HANDLER)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    return handler
