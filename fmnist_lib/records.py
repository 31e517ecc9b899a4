"""Run records: `metrics.json`, `run.json` and the facts that make a run reproducible."""

from __future__ import annotations

import json
import os
import platform
import secrets
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from fmnist_lib.config import PROJ_ROOT

PACKAGES = (
    "keras",
    "tensorflow-cpu",
    "jax",
    "numpy",
    "pandas",
    "scikit-learn",
    "matplotlib",
    "seaborn",
    "umap-learn",
    "papermill",
    "nbval",
)


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write JSON atomically (temp file + rename), so a killed run never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    # Created as `open` would create it: mode 0666 less the umask, readable by whoever may
    # read the runs folder (mkstemp would make it 0600).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    with os.fdopen(fd, "w") as fh:
        json.dump(obj, fh, indent=2, sort_keys=False, default=_jsonable)
        fh.write("\n")
    os.replace(tmp, path)
    return path


def read_json(path: str | os.PathLike[str], default: Any = None) -> Any:
    """Read JSON, or return `default` when the file does not exist."""
    path = Path(path)
    if not path.exists():
        return default
    return json.loads(path.read_text())


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def update_metrics(run_dir: str | os.PathLike[str], key: str, value: Any) -> dict:
    """Set `metrics.json[key]` (dotted keys nest: "training.mlp") and return the whole file."""
    path = Path(run_dir) / "metrics.json"
    metrics = read_json(path, {})
    node = metrics
    *parents, leaf = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    write_json(path, metrics)
    return metrics


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that shape results."""
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def git_state(root: Path = PROJ_ROOT) -> dict[str, Any]:
    """Commit hash and whether the work tree has uncommitted changes."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    if os.environ.get("FMNIST_GIT_COMMIT"):
        # A copied tree (an accelerator machine) whose .git, if any, is not the source of
        # truth: whoever copied it names the commit.
        return {"commit": os.environ["FMNIST_GIT_COMMIT"], "dirty": None, "source": "env"}
    status = git("status", "--porcelain", "--untracked-files=no")
    dirty = bool(status) if status is not None else None
    return {"commit": git("rev-parse", "HEAD"), "dirty": dirty}


def describe_device() -> dict[str, Any]:
    """The Keras backend and the device it computes on, without importing TensorFlow."""
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    info: dict[str, Any] = {
        "keras_backend": backend,
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }
    if backend == "jax":
        try:
            import jax

            info["devices"] = [str(d) for d in jax.devices()]
            info["device_kind"] = jax.devices()[0].device_kind  # e.g. "NVIDIA H100 80GB HBM3"
        except Exception as exc:  # report, do not fail a run over a description
            info["devices"] = f"unavailable: {exc}"
    else:
        info["devices"] = ["cpu"]
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment_record() -> dict[str, Any]:
    """Versions, git state, backend and device, as stored in `run.json`."""
    return {
        "python": platform.python_version(),
        "versions": package_versions(),
        "git": git_state(),
        "device": describe_device(),
    }


def run_status(path: str | os.PathLike[str]) -> str | None:
    """The `status` of the run record at `path`; None when it is missing, unreadable, not
    JSON, or not shaped as a run writes it (`run_record_problem`)."""
    try:
        record = read_json(path)
    except (OSError, ValueError):  # ValueError: JSONDecodeError and UnicodeDecodeError
        return None
    if not isinstance(record, dict) or run_record_problem(record, ("status",)):
        return None
    return record["status"]


RUN_FIELDS: dict[str, tuple[type, ...]] = {
    "profile": (str,),
    "status": (str,),
    "steps": (list,),
    "started": (str,),
    "overrides": (dict, type(None)),
    "models": (list, type(None)),
    "notebooks": (list, type(None)),
    "parameters": (dict,),
    "resumed": (list,),
    "seconds": (int, float),
}


def run_record_problem(record: dict[str, Any], required: tuple[str, ...] = ("profile",)) -> str:
    """What is wrong with the shape of a `run.json` (a dict with `profile`), or "" if nothing.

    The fields a run writes must have the types it writes: `steps` a list of steps, each with
    a `name` and a `status`; `models` and `notebooks` lists of names or null. The `required`
    fields must be there (a resume needs `status` and `steps` too).
    """
    for key, types in RUN_FIELDS.items():
        if key not in record:
            if key in required:
                return f"no {key!r}"
            continue
        value = record[key]
        if not isinstance(value, types) or isinstance(value, bool):
            return f"{key!r} is {type(value).__name__} {_short(value)}, not {_names(types)}"
    for i, step in enumerate(record.get("steps", [])):
        if not isinstance(step, dict):
            return f"steps[{i}] is {type(step).__name__}, not a mapping"
        for key in ("name", "status"):
            if not isinstance(step.get(key), str):
                return f"steps[{i}] has no {key!r}"
    for key in ("models", "notebooks"):
        names = record.get(key)
        if names is not None and not all(isinstance(n, str) for n in names):
            return f"{key!r} holds something that is not a name"
    return ""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _names(types: tuple[type, ...]) -> str:
    words = {str: "a string", list: "a list", dict: "a mapping", type(None): "null"}
    words.update({int: "a number", float: "a number"})
    return " or ".join(dict.fromkeys(words[t] for t in types))
