"""Drift monitoring for `predict`: a profile of what the run's model saw, and a check of a batch.

`profile_run` builds the reference `Profile` from a run folder: the pixel statistics of the
data set's training images and, for every trained model, the class mix and confidence of its test
predictions. `04_results` saves it as `monitor.json` (`save`). `predict` reads it back
(`run_profile`, which builds it from the run's own records when an older run lacks the file)
and calls `check` on what it classified: one `DriftWarning` per finding, each a line that names
the file(s) and the measured value against its threshold. Warnings are not errors.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fmnist_lib import records
from fmnist_lib.data import CLASS_NAMES

SCHEMA = 1
PROFILE_FILE = "monitor.json"

# The training band of each per-image statistic: its 0.5th and 99.5th percentiles over the
# data set's training images, so 1% of real images fall outside it by design. On the full data
# (60,000 training images) the band of the pixel mean is 14.5-153.8 and of the pixel standard
# deviation 31.2-114.7; 102 and 84 of the 10,000 test images fall outside them, as the 1%
# predicts (tests/test_monitor.py checks the real test set raises no warning).
BAND_PERCENTILES = (0.5, 99.5)
OUTSIDE_SHARE = (100 - BAND_PERCENTILES[1] + BAND_PERCENTILES[0]) / 100
# A count (images outside the band, low-confidence predictions) warns when real data would
# reach it by chance less than once in 1,000 batches (one-sided binomial test; for the
# confidence, against the upper 99.9% bound of the test set's share, `share_bound`). So a
# single image never warns on a statistic alone: 1% of real images are outside the band.
ALPHA = 0.001
# Polarity: an image whose outer ring of pixels (108 of them) averages above mid-grey has a
# light background. No real image does (the largest ring mean of the 70,000 is 108) and the
# negative of every real image does (its smallest is 148): tests/test_predict.py checks both.
BORDER_MAX_MEAN = 127
# The top class holding less than half the probability. The reference run's cnn gives 1.7%
# of the test images such a prediction (mlp 1.2%, resnet50 2.8%).
LOW_CONFIDENCE = 0.5
# Class mix: total-variation distance between the batch's predicted class shares and the
# test set's, tested only from 200 images. 200 images drawn from a balanced 10-class mix
# stray above 0.16 once in 1,000 draws (multinomial simulation: tests/test_monitor.py).
MIN_CLASS_MIX_IMAGES = 200
MAX_CLASS_MIX_TV = 0.2
CONFIDENCE_PERCENTILES = (1, 5, 25, 50)
SHOWN_FILES = 3


class ProfileError(ValueError):
    """A `monitor.json` that is not a profile of this schema; the message says what is wrong."""


class Check(enum.StrEnum):
    """What a warning is about."""

    CONVERTED = "converted"
    POLARITY = "polarity"
    PIXEL_MEAN = "pixel_mean"
    PIXEL_STD = "pixel_std"
    CLASS_MIX = "class_mix"
    CONFIDENCE = "confidence"


@dataclass(frozen=True)
class Band:
    """The 0.5th-99.5th percentile range of a per-image statistic over the training images."""

    low: float
    high: float

    def outside(self, values: np.ndarray) -> np.ndarray:
        return (values < self.low) | (values > self.high)


@dataclass(frozen=True)
class ModelProfile:
    """One model's test predictions: class mix, confidence, and the share of low confidence."""

    model: str
    n_test: int
    class_mix: tuple[float, ...]  # share of test predictions per class, CLASS_NAMES order
    confidence_percentiles: tuple[float, ...]  # top-class probability at CONFIDENCE_PERCENTILES
    low_confidence_share: float  # share of test predictions below LOW_CONFIDENCE


@dataclass(frozen=True)
class Profile:
    """The reference a batch is compared with, saved as `monitor.json`."""

    n_train: int
    pixel_mean: Band
    pixel_std: Band
    border_mean: Band
    models: tuple[ModelProfile, ...] = ()
    schema: int = SCHEMA

    def model(self, name: str) -> ModelProfile | None:
        return next((m for m in self.models if m.model == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "band_percentiles": list(BAND_PERCENTILES),
            "n_train": self.n_train,
            "pixel_mean": [self.pixel_mean.low, self.pixel_mean.high],
            "pixel_std": [self.pixel_std.low, self.pixel_std.high],
            "border_mean": [self.border_mean.low, self.border_mean.high],
            "models": {
                m.model: {
                    "n_test": m.n_test,
                    "class_mix": dict(zip(CLASS_NAMES, m.class_mix, strict=True)),
                    "confidence_percentiles": dict(
                        zip(map(str, CONFIDENCE_PERCENTILES), m.confidence_percentiles, strict=True)
                    ),
                    "low_confidence_share": m.low_confidence_share,
                }
                for m in self.models
            },
        }

    @classmethod
    def from_dict(cls, blob: Any) -> Profile:
        """Read back `to_dict`'s shape; anything else is a `ProfileError`."""
        if not isinstance(blob, dict) or blob.get("schema") != SCHEMA:
            found = blob.get("schema") if isinstance(blob, dict) else type(blob).__name__
            raise ProfileError(f"expected a profile of schema {SCHEMA}, found {found!r}")
        try:
            models = tuple(
                ModelProfile(
                    str(name),
                    int(m["n_test"]),
                    tuple(float(m["class_mix"][c]) for c in CLASS_NAMES),
                    tuple(
                        float(m["confidence_percentiles"][str(q)]) for q in CONFIDENCE_PERCENTILES
                    ),
                    float(m["low_confidence_share"]),
                )
                for name, m in blob["models"].items()
            )
            bands = {k: Band(*map(float, blob[k])) for k in ("pixel_mean", "pixel_std")}
            return cls(
                int(blob["n_train"]),
                bands["pixel_mean"],
                bands["pixel_std"],
                Band(*map(float, blob["border_mean"])),
                models,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProfileError(f"not shaped as a profile: {type(exc).__name__} {exc}") from None


@dataclass(frozen=True)
class DriftWarning:
    """One finding of `check`: `message` is the line `predict` prints."""

    check: Check
    files: tuple[str, ...]
    value: float
    threshold: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check.value,
            "files": list(self.files),
            "value": self.value,
            "threshold": self.threshold,
            "message": self.message,
        }


# --- the profile ------------------------------------------------------------------------


def border_mean(images: np.ndarray) -> np.ndarray:
    """Mean of each image's outer ring of pixels, shape (n,)."""
    ring = np.ones(images.shape[1:], dtype=bool)
    ring[1:-1, 1:-1] = False
    return images[:, ring].mean(axis=1)


def image_stats(images: np.ndarray) -> dict[Check, np.ndarray]:
    """Per-image pixel mean and standard deviation (0..255) of uint8 images (n, 28, 28)."""
    flat = np.asarray(images, dtype=np.float32).reshape(len(images), -1)
    return {Check.PIXEL_MEAN: flat.mean(axis=1), Check.PIXEL_STD: flat.std(axis=1)}


def band(values: np.ndarray) -> Band:
    """`values`' BAND_PERCENTILES range."""
    low, high = np.percentile(values, BAND_PERCENTILES)
    return Band(round(float(low), 3), round(float(high), 3))


def model_profile(model: str, proba: np.ndarray) -> ModelProfile:
    """The class mix and confidence of one model's test probabilities (n, 10)."""
    confidence = proba.max(axis=1)
    mix = np.bincount(proba.argmax(axis=1), minlength=len(CLASS_NAMES)) / len(proba)
    return ModelProfile(
        model,
        len(proba),
        tuple(round(float(s), 6) for s in mix),
        tuple(round(float(v), 6) for v in np.percentile(confidence, CONFIDENCE_PERCENTILES)),
        round(float((confidence < LOW_CONFIDENCE).mean()), 6),
    )


def profile(train_images: np.ndarray, test_proba: Mapping[str, np.ndarray]) -> Profile:
    """The reference profile: training images uint8 (n, 28, 28) and each model's test
    probabilities (n_test, 10)."""
    stats = image_stats(train_images)
    return Profile(
        len(train_images),
        band(stats[Check.PIXEL_MEAN]),
        band(stats[Check.PIXEL_STD]),
        band(border_mean(train_images)),
        tuple(model_profile(name, p) for name, p in test_proba.items()),
    )


def profile_run(run_dir: str | os.PathLike[str], ds=None) -> Profile:
    """The profile of a run: the data set's training images (`ds`, found locally when None)
    and every model's `predictions.npz`.

    The bands come from all 60,000 training images, from which the run drew its training and
    validation split, not from that split alone: a small profile's split (2,000 images) puts
    10 images beyond each 0.5% tail, too few to place the band's edges, and the false-alarm
    rate would then depend on the profile.

    Raises:
        DataError: no data set found locally; OSError, KeyError: an unreadable predictions file.
    """
    from fmnist_lib import data

    run_dir = Path(run_dir)
    ds = ds if ds is not None else data.load_fashion_mnist(allow_download=False)
    proba = {}
    for path in sorted((run_dir / "models").glob("*/predictions.npz")):
        with np.load(path) as npz:
            proba[path.parent.name] = npz["proba"]
    return profile(ds.x_train, proba)


def save(prof: Profile, run_dir: str | os.PathLike[str]) -> Path:
    """Write `monitor.json` into the run folder."""
    return records.write_json(Path(run_dir) / PROFILE_FILE, prof.to_dict())


def load(run_dir: str | os.PathLike[str]) -> Profile:
    """Read `monitor.json`; a missing file is FileNotFoundError, a damaged one ProfileError."""
    import json

    path = Path(run_dir) / PROFILE_FILE
    try:
        blob = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProfileError(f"{path}: damaged ({exc})") from None
    try:
        return Profile.from_dict(blob)
    except ProfileError as exc:
        raise ProfileError(f"{path}: damaged ({exc})") from None


def run_profile(run_dir: str | os.PathLike[str]) -> tuple[Profile | None, str]:
    """The run's profile for `predict`, and a note on where it came from.

    `monitor.json` when the run has one; otherwise (a run made before `04_results` wrote it,
    or a damaged file) the profile is built from the run's own predictions and the local
    data set: the same inputs, a second's work. None, with the reason, when that
    cannot be done either.
    """
    from fmnist_lib.data import DataError

    note = ""
    try:
        return load(run_dir), ""
    except FileNotFoundError:
        note = f"no {PROFILE_FILE} in the run: profile built from its records"
    except (OSError, ProfileError) as exc:
        note = f"{exc}: profile built from the run's records instead"
    try:
        return profile_run(run_dir), note
    except (OSError, KeyError, ValueError, DataError) as exc:
        return None, f"monitoring unavailable: no {PROFILE_FILE} and cannot build one ({exc})"


# --- the check --------------------------------------------------------------------------


def chance_limit(n: int, share: float) -> int:
    """The largest count of `n` that real data, at rate `share`, reaches with probability
    ALPHA or more: a count above it warns."""
    from scipy import stats

    return int(stats.binom.isf(ALPHA, n, share))


def share_bound(share: float, n: int) -> float:
    """The upper end of the one-sided 1 - ALPHA Clopper-Pearson interval of a share measured on
    `n` images: the test set's share is itself an estimate (500 images in the smoke profile),
    and a test set with no low-confidence prediction still allows some."""
    from scipy import stats

    k = round(share * n)
    return 1.0 if k >= n else float(stats.beta.ppf(1 - ALPHA, k + 1, n - k))


def named(files: Sequence[str]) -> str:
    """`a.png`, `a.png, b.png` or `a.png, b.png, c.png and 4 more files`."""
    shown = ", ".join(files[:SHOWN_FILES])
    rest = len(files) - SHOWN_FILES
    return shown + (f" and {rest} more file{'s' * (rest > 1)}" if rest > 0 else "")


def conversion_warnings(conversions: Mapping[str, str]) -> list[DriftWarning]:
    """One warning per converted file: the model saw only the data set's own form."""
    return [
        DriftWarning(
            Check.CONVERTED,
            (file,),
            1.0,
            0.0,
            f"{file}: {what}: not the data set's own form, so expect lower accuracy than "
            "the test set's",
        )
        for file, what in conversions.items()
    ]


def _polarity(file: str, borders: np.ndarray) -> DriftWarning | None:
    light = borders > BORDER_MAX_MEAN
    if not light.any():
        return None
    return DriftWarning(
        Check.POLARITY,
        (file,),
        float(borders.max()),
        BORDER_MAX_MEAN,
        f"{file}: {light.sum()} of {len(borders)} images have a light background (outer pixels "
        f"average up to {borders.max():.0f} of 255, above {BORDER_MAX_MEAN}): inverted? The "
        "data set has light garments on black",
    )


def _outside(
    files: Sequence[str], check: Check, values: np.ndarray, ref: Band
) -> DriftWarning | None:
    count = int(ref.outside(values).sum())
    limit = chance_limit(len(values), OUTSIDE_SHARE)
    if count <= limit:
        return None
    what = "pixel mean" if check is Check.PIXEL_MEAN else "pixel standard deviation"
    return DriftWarning(
        check,
        tuple(files),
        count,
        limit,
        f"{named(files)}: {what} of {count} of {len(values)} images outside the training "
        f"range {ref.low:.1f}-{ref.high:.1f} (its {BAND_PERCENTILES[0]}th-"
        f"{BAND_PERCENTILES[1]}th percentiles): above {limit}, which real images exceed with "
        f"p < {ALPHA}",
    )


def _class_mix(files: Sequence[str], proba: np.ndarray, ref: ModelProfile) -> DriftWarning | None:
    if len(proba) < MIN_CLASS_MIX_IMAGES:
        return None
    mix = np.bincount(proba.argmax(axis=1), minlength=len(CLASS_NAMES)) / len(proba)
    tv = float(np.abs(mix - np.array(ref.class_mix)).sum() / 2)
    if tv <= MAX_CLASS_MIX_TV:
        return None
    top = int(mix.argmax())
    return DriftWarning(
        Check.CLASS_MIX,
        tuple(files),
        round(tv, 4),
        MAX_CLASS_MIX_TV,
        f"{named(files)}: predicted class mix of {len(proba)} images is {tv:.2f} from the test "
        f"set's (total variation, above {MAX_CLASS_MIX_TV}); {mix[top]:.0%} {CLASS_NAMES[top]} "
        f"against {ref.class_mix[top]:.0%} on the test set",
    )


def _confidence(files: Sequence[str], proba: np.ndarray, ref: ModelProfile) -> DriftWarning | None:
    low = int((proba.max(axis=1) < LOW_CONFIDENCE).sum())
    limit = chance_limit(len(proba), share_bound(ref.low_confidence_share, ref.n_test))
    if low <= limit:
        return None
    return DriftWarning(
        Check.CONFIDENCE,
        tuple(files),
        low,
        limit,
        f"{named(files)}: {low} of {len(proba)} predictions have a top-class probability below "
        f"{LOW_CONFIDENCE} ({low / len(proba):.1%}, against {ref.low_confidence_share:.1%} of "
        f"the test set; more than {limit} by chance p < {ALPHA})",
    )


def check(
    images: Mapping[str, np.ndarray],
    proba: np.ndarray,
    profile: Profile,
    conversions: Mapping[str, str] | None = None,
    model: str | None = None,
) -> list[DriftWarning]:
    """Compare a batch with the profile.

    Args:
        images: file name -> its uint8 images (n, 28, 28) as the model saw them, in the order
            of `proba`'s rows.
        proba: class probabilities (sum of n, 10).
        profile: the run's reference.
        conversions: file name -> what was converted (`predict.convert_image`), for the files
            that were not in the data set's form.
        model: the served model, whose test predictions the class mix and confidence are
            compared with; skipped when the profile has none for it.

    Returns:
        Conversions first, then per file polarity and pixel statistics (and over all files
        together when there are several and no file warned on that statistic), then over
        the whole batch the class mix and confidence.
    """
    found = conversion_warnings(conversions or {})
    files = list(images)
    stats = {f: image_stats(images[f]) for f in files}
    found += [w for f in files if (w := _polarity(f, border_mean(images[f]))) is not None]
    for stat, ref in ((Check.PIXEL_MEAN, profile.pixel_mean), (Check.PIXEL_STD, profile.pixel_std)):
        per_file = [w for f in files if (w := _outside([f], stat, stats[f][stat], ref))]
        if not per_file and len(files) > 1:
            every = np.concatenate([stats[f][stat] for f in files])
            per_file = [w] if (w := _outside(files, stat, every, ref)) else []
        found += per_file
    ref_model = profile.model(model) if model else None
    if ref_model is not None and len(proba):
        found += [w for w in (_class_mix(files, proba, ref_model),) if w]
        found += [w for w in (_confidence(files, proba, ref_model),) if w]
    return found
