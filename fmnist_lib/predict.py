"""Serve a run's saved model: classify IDX, CSV or PNG images with `models/<NAME>/model.keras`.

Every input file is read and validated before Keras is imported. Images reach the model
exactly as `03_training` prepared the test set: `preprocess.prepare` with the run's
`Standardizer` (from `split.npz`), and averaged with the mirror image when the run recorded
`TTA`. PNG files must be in the data set's own form: 28x28, 8-bit single-channel grayscale, a
light garment on a black background.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from fmnist_lib import data, preprocess
from fmnist_lib.data import CLASS_NAMES, IMAGE_SHAPE, DataError
from fmnist_lib.parameters import ParameterError
from fmnist_lib.pipeline import RunError

# A PNG's outer ring of pixels (108 of them) may average at most this (mid-grey): the data
# set's garments lie on black. Every one of the 70,000 real images passes and the negative of
# every one is refused (tests/test_predict.py checks both on the real files).
BORDER_MAX_MEAN = 127
TOP_K = 3
COLUMNS = [
    "file",
    "index",
    "predicted",
    "probability",
    "top2",
    "top2_probability",
    "top3",
    "top3_probability",
]
RAW_IDX_SUFFIXES = (".idx", ".idx3")
COLOUR_MODES = {"RGB", "RGBA", "RGBX", "RGBa", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"}


@dataclass(frozen=True)
class Images:
    """The images of one input file, uint8 (n, 28, 28)."""

    file: str
    pixels: np.ndarray


@dataclass(frozen=True)
class ServedModel:
    """One trained model of a run and how its inputs are prepared."""

    run_dir: Path
    name: str
    path: Path  # models/<name>/model.keras
    tta: bool  # average each image's prediction with its mirror's, as the run did
    standardizer: preprocess.Standardizer


# --- the run and its model -------------------------------------------------------------


def read_metrics(run_dir: Path) -> dict[str, Any]:
    """The run's `metrics.json`; a missing folder or file, or broken JSON, is a `RunError`."""
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: run folder not found")
    path = run_dir / "metrics.json"
    if not path.is_file():
        raise RunError(f"{path} not found: not a run folder, or no notebook has finished in it")
    try:
        metrics = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunError(f"{path}: unreadable run record ({exc})") from None
    if not isinstance(metrics, dict):
        raise RunError(f"{path}: expected a JSON object, found {type(metrics).__name__}")
    return metrics


def best_model(metrics: dict[str, Any]) -> str | None:
    """`results.best_model` when `04_results` ran, else the most accurate trained model."""
    best = (metrics.get("results") or {}).get("best_model")
    if best:
        return str(best)
    training = metrics.get("training") or {}
    scored = {name: m.get("accuracy") for name, m in training.items() if isinstance(m, dict)}
    scored = {name: acc for name, acc in scored.items() if isinstance(acc, int | float)}
    return max(scored, key=scored.__getitem__) if scored else None


def choose_model(run_dir: str | os.PathLike[str], name: str | None = None) -> ServedModel:
    """The run's model `name` (default: its best) with its recorded preparation.

    Raises:
        RunError: no such run folder, no trained model of that name in `metrics.json`, or a
            missing `model.keras` or `split.npz`.
    """
    run_dir = Path(run_dir)
    metrics = read_metrics(run_dir)
    training = metrics.get("training") or {}
    name = name or best_model(metrics)
    if name is None:
        raise RunError(f"{run_dir}: no trained model recorded in metrics.json (run 03_training)")
    entry = training.get(name)
    if not isinstance(entry, dict):
        trained = ", ".join(sorted(training)) or "none"
        raise RunError(f"{run_dir}: no trained model {name!r} in metrics.json (trained: {trained})")
    path = run_dir / "models" / name / "model.keras"
    if not path.is_file():
        raise RunError(f"{path} not found: the run recorded {name!r} but its saved model is gone")
    try:
        _, standardizer = preprocess.load_split(run_dir)
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise RunError(f"{run_dir}: cannot read the preprocessing record: {exc}") from None
    tta = bool((entry.get("parameters") or {}).get("TTA", False))
    return ServedModel(run_dir, name, path, tta, standardizer)


# --- input files ------------------------------------------------------------------------


def read_images(path: str | os.PathLike[str]) -> Images:
    """Read one input file by its extension: `.png`, `.csv`, `.gz` (IDX) or raw IDX.

    Raises:
        DataError: a missing file, an unknown extension, or a file its reader refuses.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    suffix = path.suffix.lower()
    if suffix == ".png":
        pixels = read_png(path)
    elif suffix == ".csv":
        pixels, _ = data.read_csv_images(path)
    elif suffix == ".gz" or suffix in RAW_IDX_SUFFIXES or path.name.endswith("-ubyte"):
        pixels = data.read_idx_images(path)
    else:
        raise DataError(
            f"{path}: unknown file type {suffix or '(no extension)'}: expected .png, .csv, "
            "gzip'd IDX (.gz) or raw IDX (named *-ubyte, .idx or .idx3)"
        )
    if len(pixels) == 0:
        raise DataError(f"{path}: holds no images")
    return Images(str(path), pixels)


def read_png(path: Path) -> np.ndarray:
    """A PNG in the data set's form as uint8 (1, 28, 28); any other form is a `DataError`."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            if img.format != "PNG":
                raise DataError(f"{path}: a {img.format} image, not a PNG")
            if img.size != IMAGE_SHAPE[::-1]:
                width, height = img.size
                raise DataError(
                    f"{path}: {width}x{height} pixels, expected 28x28 as in the data set; resize it"
                )
            if img.mode != "L":
                kind = "a colour image" if img.mode in COLOUR_MODES else "an image"
                raise DataError(
                    f"{path}: {kind} (mode {img.mode}), expected 8-bit single-channel "
                    "grayscale (mode L)"
                )
            pixels = np.asarray(img, dtype=np.uint8)
    except DataError:
        raise
    except Image.UnidentifiedImageError:
        raise DataError(f"{path}: not a readable PNG file (not an image Pillow knows)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: not a readable PNG file ({exc})") from None
    border = float(border_mean(pixels[None])[0])
    if border > BORDER_MAX_MEAN:
        raise DataError(
            f"{path}: light border (mean {border:.0f} of 255 on the outer pixels, at most "
            f"{BORDER_MAX_MEAN}): expected a light garment on a black background as in the "
            "data set; invert it (255 - pixel)"
        )
    return pixels[None]


def border_mean(images: np.ndarray) -> np.ndarray:
    """Mean of each image's outer ring of pixels, shape (n,)."""
    ring = np.ones(images.shape[1:], dtype=bool)
    ring[1:-1, 1:-1] = False
    return images[:, ring].mean(axis=1)


# --- prediction -------------------------------------------------------------------------


def load_model(served: ServedModel):
    """The saved `model.keras`, loaded with `safe_mode=True` (this imports Keras)."""
    from fmnist_lib import train

    try:
        return train.load_checkpoint(served.path)
    except (OSError, ValueError, TypeError) as exc:
        raise RunError(f"{served.path}: cannot load the saved model: {exc}") from None


def probabilities(model, served: ServedModel, images: np.ndarray) -> np.ndarray:
    """Class probabilities of uint8 images (n, 28, 28), prepared and averaged as the run did."""
    from fmnist_lib import evaluate

    x = preprocess.prepare(served.name, images, served.standardizer)
    expected = tuple(model.input_shape[1:])
    if x.shape[1:] != expected:
        raise RunError(
            f"{served.path}: the model takes inputs shaped {expected}, but {served.name!r} "
            f"images are prepared as {x.shape[1:]}"
        )
    return evaluate.predict(model, x, tta=served.tta)


def prediction_rows(batches: list[Images], proba: np.ndarray) -> list[list[Any]]:
    """One row per image: file, index in the file, top class and probability, then top 2 and 3."""
    sources = [(b.file, i) for b in batches for i in range(len(b.pixels))]
    top = np.argsort(-proba, axis=1, kind="stable")[:, :TOP_K]
    rows = []
    for (file, index), classes, p in zip(sources, top, proba, strict=True):
        row: list[Any] = [file, index]
        for c in classes:
            row += [CLASS_NAMES[c], f"{p[c]:.6f}"]
        rows.append(row)
    return rows


def write_rows(rows: list[list[Any]], out: TextIO) -> None:
    """Write the header and the rows as CSV."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)


def predict_files(
    run_dir: str | os.PathLike[str],
    files: list[str | os.PathLike[str]],
    model_name: str | None = None,
    out: str | os.PathLike[str] | None = None,
) -> int:
    """Classify every image of `files` with the run's model; write CSV to `out` or stdout.

    The run, every input file and the output folder are checked before Keras is imported.

    Returns:
        The number of images classified.
    """
    served = choose_model(run_dir, model_name)
    batches = [read_images(f) for f in files]
    if out is not None:
        check_out(Path(out))
    proba = probabilities(load_model(served), served, np.concatenate([b.pixels for b in batches]))
    rows = prediction_rows(batches, proba)
    if out is None:
        try:
            write_rows(rows, sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:  # the reader left early (`| head`): not a failure
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return len(rows)
    try:
        with open(out, "w", newline="") as fh:
            write_rows(rows, fh)
    except OSError as exc:
        raise ParameterError(f"--out {out}: cannot write ({exc.strerror})") from None
    return len(rows)


def check_out(out: Path) -> None:
    """Refuse an output path that is a folder or lies in a missing one."""
    if out.is_dir():
        raise ParameterError(f"--out {out}: is a folder, expected a CSV file name")
    if not out.parent.is_dir():
        raise ParameterError(f"--out {out}: folder {out.parent} does not exist")
