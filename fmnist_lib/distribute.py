"""Accelerator settings: mixed precision and data parallelism over every visible device.

Both are Keras 3 APIs. `DataParallel` is implemented by the JAX backend (Keras 3.15), so on
an accelerator machine run with `KERAS_BACKEND=jax`; TensorFlow on the CPU keeps one device.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import keras

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


def check_precision(policy: str) -> str:
    """Refuse a `PRECISION` that is not one of `PRECISIONS`."""
    if policy not in PRECISIONS:
        raise ValueError(f"PRECISION={policy!r}: use one of {', '.join(PRECISIONS)}")
    return policy


def set_precision(policy: str) -> str:
    """Set Keras's global dtype policy (`PRECISION`), before any model is built."""
    keras.mixed_precision.set_global_policy(check_precision(policy))
    return policy


CACHE_SETTING = "FMNIST_COMPILATION_CACHE"


def compilation_cache(directory: str | os.PathLike[str] | None = None) -> str | None:
    """Turn on JAX's persistent compilation cache in `directory` (default: the folder that
    `$FMNIST_COMPILATION_CACHE` names); off, and None returned, when neither names one.

    Opt-in, for repeated runs on one machine: a cached step loads in seconds instead of
    compiling again. Every executable is cached, however quick its compilation. Only on
    the JAX backend; elsewhere nothing changes and None is returned.
    """
    folder = directory if directory is not None else os.environ.get(CACHE_SETTING, "")
    if not folder or keras.backend.backend() != "jax":
        return None
    import jax

    path = Path(folder).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{CACHE_SETTING}={folder!r}: {path} is a file, not a folder")
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return str(path)


def data_parallel(batch_size: int, enable: bool = True) -> dict[str, Any]:
    """Spread each batch over every visible device with `keras.distribution.DataParallel`.

    Only on the JAX backend and only with more than one device; otherwise nothing changes.
    Call it before building the model. Returns what was set up, for `metrics.json`, with
    the compilation cache (`compilation_cache`, opt-in) that it turns on.
    """
    keras.distribution.set_distribution(None)
    devices = keras.distribution.list_devices()
    record: dict[str, Any] = {
        "backend": keras.backend.backend(),
        "devices": devices,
        "compilation_cache": compilation_cache(),
    }
    if not enable or keras.backend.backend() != "jax" or len(devices) < 2:
        return {**record, "distribution": None}
    if batch_size % len(devices):
        raise ValueError(
            f"BATCH_SIZE={batch_size}: with {len(devices)} devices the batch must be a "
            f"multiple of {len(devices)} for data parallelism"
        )
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    return {**record, "distribution": "DataParallel"}
