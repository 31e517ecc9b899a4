"""Evaluation: accuracy, macro F1, confusion matrices, confused pairs and calibration."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics

from fmnist_lib.data import CLASS_NAMES, NUM_CLASSES


def predict(model, images: np.ndarray, tta: bool = False, batch_size: int = 512) -> np.ndarray:
    """Class probabilities; with `tta`, averaged over each image and its left-right mirror."""
    proba = model.predict(images, batch_size=batch_size, verbose=0)
    if tta:
        proba = (proba + model.predict(images[:, :, ::-1], batch_size=batch_size, verbose=0)) / 2
    return proba


def shifted(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """`(n, h, w, ...)` images moved `dy` rows down and `dx` columns right, the pixels that
    come in set to 0 (the background)."""
    out = np.zeros_like(images)
    h, w = images.shape[1:3]
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[:, yd, xd] = images[:, ys, xs]
    return out


def predict_views(model, images: np.ndarray, shift: int = 1, batch_size: int = 512) -> np.ndarray:
    """Multi-crop test-time augmentation: class probabilities averaged over each image and
    its mirror, each as it is and moved `shift` pixels up, down, left and right (10 views;
    `shift=0` is `predict(..., tta=True)`)."""
    if shift < 0:
        raise ValueError(f"shift={shift!r}: use 0 (flip only) or more pixels")
    moves = [(0, 0)] + ([(shift, 0), (-shift, 0), (0, shift), (0, -shift)] if shift else [])
    total = None
    for view in (images, images[:, :, ::-1]):
        for dy, dx in moves:
            proba = model.predict(shifted(view, dy, dx), batch_size=batch_size, verbose=0)
            total = proba if total is None else total + proba
    return total / (2 * len(moves))


def summary(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Test accuracy, macro F1 and log-loss from predicted probabilities."""
    y_pred = proba.argmax(axis=1)
    return {
        "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
        "macro_f1": float(metrics.f1_score(y_true, y_pred, average="macro")),
        "log_loss": float(metrics.log_loss(y_true, proba, labels=range(NUM_CLASSES))),
        "n": int(len(y_true)),
    }


def confusion(y_true: np.ndarray, y_pred: np.ndarray, normalize: bool = False) -> pd.DataFrame:
    """Confusion matrix (rows: true class, columns: predicted), optionally row-normalised."""
    cm = metrics.confusion_matrix(
        y_true, y_pred, labels=range(NUM_CLASSES), normalize="true" if normalize else None
    )
    return pd.DataFrame(cm, index=list(CLASS_NAMES), columns=list(CLASS_NAMES))


def per_class_report(y_true: np.ndarray, y_pred: np.ndarray) -> pd.DataFrame:
    """Precision, recall, F1 and support per class."""
    p, r, f, s = metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=range(NUM_CLASSES), zero_division=0
    )
    return pd.DataFrame(
        {"precision": p, "recall": r, "f1": f, "support": s}, index=list(CLASS_NAMES)
    )


def confused_pairs(y_true: np.ndarray, y_pred: np.ndarray, top: int = 5) -> pd.DataFrame:
    """The most frequent (true, predicted) mistakes."""
    cm = metrics.confusion_matrix(y_true, y_pred, labels=range(NUM_CLASSES))
    np.fill_diagonal(cm, 0)
    order = np.argsort(cm, axis=None)[::-1][:top]
    rows = [
        (CLASS_NAMES[i], CLASS_NAMES[j], int(cm[i, j]))
        for i, j in zip(*np.unravel_index(order, cm.shape), strict=True)
        if cm[i, j] > 0
    ]
    return pd.DataFrame(rows, columns=["true", "predicted", "count"])


def expected_calibration_error(
    y_true: np.ndarray, proba: np.ndarray, bins: int = 15
) -> tuple[float, pd.DataFrame]:
    """ECE over equal-width confidence bins, and the per-bin table for a reliability plot."""
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_true).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    conf_sum = np.bincount(which, weights=confidence, minlength=bins)
    acc_sum = np.bincount(which, weights=correct, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        table = pd.DataFrame(
            {
                "lower": edges[:-1],
                "upper": edges[1:],
                "count": count,
                "confidence": conf_sum / count,
                "accuracy": acc_sum / count,
            }
        )
    ece = float(np.sum(np.abs(acc_sum - conf_sum)) / max(len(y_true), 1))
    return ece, table


# --- cost: parameters and inference time ---------------------------------------------

LARGE_BATCH = 1024  # images per call of the throughput measurement (fewer if fewer are given)


def trainable_params(model) -> int:
    """Parameters that training updates: the sizes of `model.trainable_weights`."""
    return int(sum(np.prod(w.shape, dtype=np.int64) for w in model.trainable_weights))


@dataclass(frozen=True)
class InferenceCost:
    """Milliseconds per image at batch 1 and at a large batch, on the machine that measured.

    Each is the median of `repeats` timed calls of `model.predict_on_batch` after warm-up
    calls (TensorFlow traces and JAX compiles the first call of each shape).
    """

    ms_per_image_batch1: float
    ms_per_image_large_batch: float
    large_batch: int  # LARGE_BATCH, or every image given when there are fewer
    images_per_second: float  # at the large batch
    repeats: int
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> InferenceCost:
        """Read back `to_dict`'s output; a missing or unknown field is a `ValueError`."""
        names = {f.name for f in fields(cls)}
        if not isinstance(record, dict) or set(record) != names:
            got = sorted(record) if isinstance(record, dict) else type(record).__name__
            raise ValueError(f"inference cost record: expected fields {sorted(names)}, got {got}")
        return cls(**record)


def inference_cost(
    model, x: np.ndarray, repeats: int = 5, warmup: int = 2, large_batch: int = LARGE_BATCH
) -> InferenceCost:
    """Time `model.predict_on_batch` on `x` (prepared model inputs) at batch 1 and at
    `large_batch` images (or all of `x` when it holds fewer): medians of `repeats` calls."""
    if len(x) < 1:
        raise ValueError("x: no images to time inference on (got 0)")
    if repeats < 1 or warmup < 0 or large_batch < 1:
        raise ValueError(
            f"repeats={repeats}, warmup={warmup}, large_batch={large_batch}: need repeats >= 1, "
            "warmup >= 0 and large_batch >= 1"
        )
    large = min(large_batch, len(x))

    def median_seconds(size: int) -> float:
        times = []
        for call in range(warmup + repeats):
            start = (call * size) % max(len(x) - size + 1, 1)
            batch = x[start : start + size]
            began = time.perf_counter()
            np.asarray(model.predict_on_batch(batch))  # waits for the result on every backend
            if call >= warmup:
                times.append(time.perf_counter() - began)
        return float(np.median(times))

    # Two batch sizes are two traces by design; TensorFlow would warn of "retracing" on the
    # console. Its Python logger is quietened for the timing only (a name, so no import).
    tf_log = logging.getLogger("tensorflow")
    level = tf_log.level
    tf_log.setLevel(logging.ERROR)
    try:
        one = median_seconds(1)
        many = median_seconds(large)
    finally:
        tf_log.setLevel(level)
    return InferenceCost(
        ms_per_image_batch1=1000 * one,
        ms_per_image_large_batch=1000 * many / large,
        large_batch=large,
        images_per_second=large / many,
        repeats=repeats,
        method=(
            f"median of {repeats} timed model.predict_on_batch calls after {warmup} warm-up "
            "calls, per batch size"
        ),
    )
