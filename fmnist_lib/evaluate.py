"""Evaluation: accuracy, macro F1, confusion matrices, confused pairs and calibration."""

from __future__ import annotations

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
