"""Serve a run's saved model: classify IDX, CSV or image files with `models/<NAME>/model.keras`.

Every input file is read and validated before Keras is imported, and every faulty file is
reported at once. Images reach the model exactly as `03_training` prepared the test set:
`preprocess.prepare` with the run's `Standardizer` (from `split.npz`), and averaged with the
mirror image when the run recorded `TTA`. A PNG or JPEG not in the data set's own form (28x28,
8-bit grayscale, a light garment on black) is converted as Fashion-MNIST itself was made
(`convert_image`), and the conversion is reported. What was classified is then compared with
the run's profile (`fmnist_lib.monitor`) and drift is reported as warnings.
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

from fmnist_lib import data, monitor, preprocess, records
from fmnist_lib.data import CLASS_NAMES, IMAGE_SHAPE, DataError
from fmnist_lib.monitor import BORDER_MAX_MEAN, border_mean
from fmnist_lib.parameters import ParameterError
from fmnist_lib.pipeline import RunError

REPORT_SCHEMA = 1
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
# What happens to a picture (`read_images`): converted when needed, always as a photo, or never.
PREPARE = ("auto", "photo", "none")
RAW_IDX_SUFFIXES = (".idx", ".idx3")
# Photo files by extension, and the format Pillow must find in them.
PHOTO_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
# 16-bit and floating-point images: Pillow's conversions clip rather than scale them.
DEEP_MODES = {"I", "F", "I;16", "I;16B", "I;16L", "I;16N"}
MODE_NAMES = {"L": "grayscale", "1": "black-and-white", "P": "palette", "LA": "grayscale+alpha"}
# Xiao et al. 2017 (arXiv:1708.07747), section 2: trim the edges "close to the color of the
# corner pixels", within 5% of the maximum intensity; sharpen with a Gaussian of radius 1.0.
TRIM_TOLERANCE = round(0.05 * 255)
SHARPEN_RADIUS = 1.0
LATEST = "latest"
MAX_FILE_IMAGES = 100_000  # images read from one IDX file (the data set's largest: 60,000)
SHOWN_RUN_IDS = 5


@dataclass(frozen=True)
class Images:
    """The images of one input file, uint8 (n, 28, 28), and what was done to bring them to the
    data set's form ("" when nothing)."""

    file: str
    pixels: np.ndarray
    conversion: str = ""


class InputErrors(DataError):
    """Input files that cannot be classified: one `file: fault` line each."""

    def __init__(self, faults: list[str]) -> None:
        super().__init__("\n".join(faults))
        self.faults = faults


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


def read_images(path: str | os.PathLike[str], prepare: str = "auto") -> Images:
    """Read one input file by its extension: `.png`/`.jpg`/`.jpeg`, `.csv`, `.gz` (IDX) or
    raw IDX. `prepare` says what happens to a picture (`PREPARE`): `auto` converts one that
    is not in the data set's form, `photo` converts every picture as a product photo, `none`
    refuses one that would need converting.

    Raises:
        DataError: a missing file, an unknown extension, or a file its reader refuses.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    suffix = path.suffix.lower()
    conversion = ""
    if suffix in PHOTO_FORMATS:
        pixels, conversion = read_photo(path, prepare)
    elif suffix == ".csv":
        pixels, _ = data.read_csv_images(path)
    elif suffix == ".gz" or suffix in RAW_IDX_SUFFIXES or path.name.endswith("-ubyte"):
        pixels = data.read_idx_images(path, max_images=MAX_FILE_IMAGES)
    else:
        raise DataError(
            f"{path}: unknown file type {suffix or '(no extension)'}: expected .png, .jpg, "
            ".csv, gzip'd IDX (.gz) or raw IDX (named *-ubyte, .idx or .idx3)"
        )
    if len(pixels) == 0:
        raise DataError(f"{path}: holds no images")
    return Images(str(path), pixels, conversion)


def read_all(files: list[str | os.PathLike[str]], prepare: str = "auto") -> list[Images]:
    """Read every file; raise `InputErrors` naming every faulty one, not just the first."""
    if prepare not in PREPARE:
        raise ValueError(f"prepare={prepare!r}: expected one of {', '.join(PREPARE)}")
    batches, faults = [], []
    for file in files:
        try:
            batches.append(read_images(file, prepare))
        except DataError as exc:
            faults.append(str(exc))
    if faults:
        raise InputErrors(faults)
    return batches


def read_photo(path: Path, prepare: str = "auto") -> tuple[np.ndarray, str]:
    """A PNG or JPEG as uint8 (1, 28, 28), converted as `prepare` says (`read_images`), and
    what was converted ("" when nothing). An unreadable or 16-bit file, or with `none` one
    that needs converting, is a `DataError`."""
    from PIL import Image

    expected = PHOTO_FORMATS[path.suffix.lower()]
    try:
        with Image.open(path) as img:
            if img.format != expected:
                raise DataError(f"{path}: a {img.format} image, not a {expected}")
            frames = getattr(img, "n_frames", 1)
            if frames > 1:
                raise DataError(
                    f"{path}: an animated {img.format} of {frames} frames, expected one image; "
                    "save the frame to classify as a still image"
                )
            if img.mode in DEEP_MODES:
                raise DataError(
                    f"{path}: a 16-bit or floating-point image (mode {img.mode}), expected 8-bit "
                    "grayscale or colour; save it with 8 bits per channel"
                )
            img.load()
            pixels, conversion = convert_image(img, photo=prepare == "photo")
            if prepare == "none" and conversion:
                raise DataError(
                    f"{path}: not in the data set's form (it would be {conversion}); "
                    "--prepare auto (the default) or photo converts it"
                )
    except DataError:
        raise
    except Image.UnidentifiedImageError:
        raise DataError(
            f"{path}: not a readable {expected} file (not an image Pillow knows)"
        ) from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: not a readable {expected} file ({exc})") from None
    return pixels[None], conversion


def convert_image(img, photo: bool = False) -> tuple[np.ndarray, str]:
    """A Pillow image in the data set's form, uint8 (28, 28), and what was converted.

    As Fashion-MNIST was made from product photos (Xiao et al. 2017, section 2): trim the
    edges close to the corner pixel's colour, resize the longest edge to 28 by subsampling,
    sharpen, extend the shorter edge to 28 centred, negate, convert to 8-bit grayscale. An
    image already 28x28 is neither trimmed nor resized; one on a dark background (outer ring
    of pixels at most `BORDER_MAX_MEAN` on average) is not negated; one in mode L is not
    converted. Transparent pixels are laid on white first (as a page shows them). With
    `photo`, every image is trimmed, resized and sharpened as a photo, 28x28 ones too.
    """
    from PIL import Image, ImageChops, ImageFilter, ImageOps

    width, height = img.size
    source = f"{width}×{height} {MODE_NAMES.get(img.mode, img.mode)}"
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", img.size, "white"), rgba).convert("RGB")
    elif img.mode not in ("L", "RGB"):
        img = img.convert("RGB")
    light = float(border_mean(np.asarray(img.convert("L"))[None])[0]) > BORDER_MAX_MEAN
    resized = photo or img.size != IMAGE_SHAPE[::-1]
    if resized:
        corner = img.getpixel((0, 0))
        diff = ImageChops.difference(img, Image.new(img.mode, img.size, corner))
        if img.mode == "RGB":  # the largest channel difference
            r, g, b = diff.split()
            diff = ImageChops.lighter(ImageChops.lighter(r, g), b)
        box = diff.point(lambda v: 255 if v > TRIM_TOLERANCE else 0).getbbox()
        img = img.crop(box) if box else img
        scale = IMAGE_SHAPE[0] / max(img.size)
        size = tuple(max(1, min(IMAGE_SHAPE[0], round(side * scale))) for side in img.size)
        img = img.resize(size, Image.Resampling.NEAREST)
        img = img.filter(ImageFilter.UnsharpMask(radius=SHARPEN_RADIUS))
        canvas = Image.new(img.mode, IMAGE_SHAPE[::-1], corner)
        canvas.paste(img, ((IMAGE_SHAPE[1] - size[0]) // 2, (IMAGE_SHAPE[0] - size[1]) // 2))
        img = canvas
    recoloured = img.mode != "L"
    img = img.convert("L")
    if light:
        img = ImageOps.invert(img)
    steps = [f"{source} → 28×28 grayscale"] if resized or recoloured else []
    steps += ["inverted (light background)"] if light else []
    return np.asarray(img, dtype=np.uint8), ", ".join(steps)


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


@dataclass(frozen=True)
class PredictReport:
    """What one `predict` call did, for `--report`: its inputs, conversions and warnings."""

    run: str
    model: str
    images: int
    files: tuple[Images, ...]
    monitoring: str  # where the profile came from, or why there is none
    warnings: tuple[monitor.DriftWarning, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": REPORT_SCHEMA,
            "run": self.run,
            "model": self.model,
            "images": self.images,
            "files": [
                {"file": b.file, "images": len(b.pixels), "conversion": b.conversion}
                for b in self.files
            ],
            "monitoring": self.monitoring,
            "warnings": [w.to_dict() for w in self.warnings],
        }


def drift_warnings(
    run_dir: Path, model: str, batches: list[Images], proba: np.ndarray
) -> tuple[list[monitor.DriftWarning], str]:
    """The monitor's warnings on a classified batch, and where its profile came from."""
    conversions = {b.file: b.conversion for b in batches if b.conversion}
    prof, note = monitor.run_profile(run_dir)
    if prof is None:
        return monitor.conversion_warnings(conversions), note
    images = {b.file: b.pixels for b in batches}
    if len(images) < len(batches):  # the same file given twice: one entry per occurrence
        images = {f"{b.file} (#{i + 1})": b.pixels for i, b in enumerate(batches)}
    found = monitor.check(images, proba, prof, conversions, model)
    if prof.model(model) is None:
        note = "; ".join(filter(None, [note, f"no test predictions of {model}: no output checks"]))
    return found, note or f"profile from {monitor.PROFILE_FILE}"


def predict_files(
    run: str | os.PathLike[str],
    files: list[str | os.PathLike[str]],
    model_name: str | None = None,
    out: str | os.PathLike[str] | None = None,
    report: str | os.PathLike[str] | None = None,
    runs_root: Path | None = None,
    prepare: str = "auto",
) -> PredictReport:
    """Classify every image of `files` with the run's model; write CSV to `out` or stdout,
    the monitor's warnings to stderr, and the `PredictReport` as JSON to `report`.

    The run (a folder, a run id under `runs_root`, or `latest`), every input file and the
    output paths are checked before Keras is imported.
    """
    run_dir = resolve_run(run, runs_root)
    served = choose_model(run_dir, model_name)
    batches = read_all(files, prepare)
    for path, flag in ((out, "--out"), (report, "--report")):
        if path is not None:
            check_out(Path(path), flag, files)
    proba = probabilities(load_model(served), served, np.concatenate([b.pixels for b in batches]))
    rows = prediction_rows(batches, proba)
    if out is None:
        try:
            write_rows(rows, sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:  # the reader left early (`| head`): not a failure
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    else:
        try:
            with open(out, "w", newline="") as fh:
                write_rows(rows, fh)
        except OSError as exc:
            raise ParameterError(f"--out {out}: cannot write ({exc.strerror})") from None
    found, monitoring = drift_warnings(run_dir, served.name, batches, proba)
    for warning in found:
        print(f"fmnist: warning: {warning.message}", file=sys.stderr)
    if monitoring.startswith("monitoring unavailable"):
        print(f"fmnist: note: {monitoring}", file=sys.stderr)
    result = PredictReport(
        str(run_dir), served.name, len(rows), tuple(batches), monitoring, tuple(found)
    )
    if report is not None:
        try:
            records.write_json(report, result.to_dict())
        except OSError as exc:
            raise ParameterError(f"--report {report}: cannot write ({exc.strerror})") from None
    return result


def resolve_run(run: str | os.PathLike[str], runs_root: Path | None = None) -> Path:
    """`--run`: a run folder, a run id as `python -m fmnist_lib runs` lists it (a folder of
    `runs_root`, default `config.runs_dir()`), or `latest`, the newest finished run with a
    trained model. A bare name that is neither is a `ParameterError` naming the ids there."""
    from fmnist_lib import catalog, config

    text = str(run)
    root = (runs_root or config.runs_dir()).resolve()
    path = Path(text)
    if text != LATEST and (path.is_dir() or os.sep in text or "/" in text or text.startswith(".")):
        return path  # a path: choose_model says when it is not a run folder
    try:
        entries, _ = catalog.list_runs(root)
    except OSError as exc:
        raise ParameterError(f"--run {text}: cannot list {root}: {exc.strerror or exc}") from None
    if text == LATEST:
        done = [e for e in entries if e.status == "done" and e.best_model]
        if not done:
            raise ParameterError(
                f"--run latest: no finished run with a trained model in {root} "
                "(`python -m fmnist_lib runs` lists them)"
            )
        return Path(done[0].path)
    if (root / text).is_dir():
        return root / text
    ids = [e.id for e in entries[:SHOWN_RUN_IDS]]
    known = (
        f"newest: {', '.join(ids)}"
        + (f" and {len(entries) - len(ids)} more" if len(entries) > len(ids) else "")
        if ids
        else "none there yet"
    )
    raise ParameterError(
        f"--run {text}: no run folder or run id {text!r} in {root} ({known}; "
        "`python -m fmnist_lib runs` lists them, `latest` is the newest finished)"
    )


def check_out(
    out: Path, flag: str = "--out", inputs: list[str | os.PathLike[str]] | tuple = ()
) -> None:
    """Refuse an output path that is a folder, lies in a missing one or is one of `inputs`
    (writing it would overwrite the images being classified)."""
    for given in inputs:
        same = Path(given).resolve() == out.resolve()
        if same or (out.exists() and Path(given).exists() and out.samefile(given)):
            raise ParameterError(
                f"{flag} {out}: is the input file {given}, which it would overwrite; "
                "write to another file"
            )
    if out.is_dir():
        raise ParameterError(f"{flag} {out}: is a folder, expected a file name")
    if not out.parent.is_dir():
        raise ParameterError(f"{flag} {out}: folder {out.parent} does not exist")
