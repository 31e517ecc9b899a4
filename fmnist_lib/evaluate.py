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
