"""A run's training curves in tools users already know: TensorBoard on its logs.

`03_training` writes TensorBoard logs (Keras's callback, TensorFlow backend) to
`models/<MODEL>/<stage>/tensorboard/{train,validation}` in the run folder. `serve_tensorboard`
serves every one of them at once, named by that path (`cnn/main/tensorboard/train`), so the
models of a run are compared on one chart; `python -m fmnist_lib tensorboard RUN` prints the URL.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fmnist_lib.parameters import ParameterError

EVENTS_GLOB = "events.out.tfevents.*"
INSTALL_HINT = "pip install tensorboard==2.21.0 (the pin in pyproject.toml and environment.yml)"


class TensorBoardMissing(RuntimeError):
    """The `tensorboard` package is not installed in this environment."""


def log_dirs(run_dir: Path) -> list[Path]:
    """The folders of the run holding TensorBoard event files, in path order."""
    return sorted({p.parent for p in (Path(run_dir) / "models").rglob(EVENTS_GLOB)})


def tensorboard_missing() -> str | None:
    """Why TensorBoard cannot be started here, or None when it can."""
    if importlib.util.find_spec("tensorboard") is None:
        return f"TensorBoard is not installed in this environment: {INSTALL_HINT}"
    return None


def serve_tensorboard(run_dir: Path, port: int = 6006, host: str = "localhost") -> str:
    """Start TensorBoard on the run's logs in a background thread and return its URL.

    `port` 0 lets the system choose a free one. It serves until this process exits.

    Raises:
        TensorBoardMissing: the `tensorboard` package is not installed.
        ParameterError: the run folder holds no TensorBoard logs, or the port is taken.
    """
    missing = tensorboard_missing()
    if missing:
        raise TensorBoardMissing(missing)
    run_dir = Path(run_dir)
    if not log_dirs(run_dir):
        raise ParameterError(
            f"{run_dir}: no TensorBoard logs under models/ (03_training writes them with the "
            "TensorFlow backend; a run on JAX has none)"
        )
    from tensorboard import program

    board = program.TensorBoard()
    # Python-only loading: no data-server subprocess to outlive us; a run's logs are small.
    board.configure(logdir=str(run_dir / "models"), port=port, host=host, load_fast="false")
    try:
        return board.launch()
    except program.TensorBoardServerException as exc:  # e.g. the port is taken
        raise ParameterError(f"--port {port}: {exc.msg}") from None
