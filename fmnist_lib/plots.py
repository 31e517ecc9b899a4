"""Figures for notebooks and slides: one `save_fig` helper, stable names, 150+ dpi."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from fmnist_lib.data import CLASS_NAMES

DPI = 150
STYLE = {"figure.dpi": 100, "savefig.dpi": DPI, "axes.titlesize": 11, "font.size": 10}
plt.rcParams.update(STYLE)
sns.set_theme(style="whitegrid", rc=STYLE)


def figures_dir(run_dir: str | os.PathLike[str]) -> Path:
    """The run's figure folder (created)."""
    path = Path(run_dir) / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_fig(fig: plt.Figure, fig_id: str, run_dir: str | os.PathLike[str]) -> Path:
    """Save `fig` as `figures/<fig_id>.png` (150 dpi) and `.svg`; return the PNG path."""
    folder = figures_dir(run_dir)
    fig.tight_layout()
    png = folder / f"{fig_id}.png"
    fig.savefig(png, dpi=DPI, bbox_inches="tight", facecolor="white")
    fig.savefig(folder / f"{fig_id}.svg", bbox_inches="tight", facecolor="white")
    return png


def image_grid(
    images: np.ndarray,
    titles: list[str] | None = None,
    ncols: int = 10,
    size: float = 1.2,
    title_colors: list[str] | None = None,
) -> plt.Figure:
    """A grid of grayscale images with optional titles."""
    n = len(images)
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * (size + 0.25)))
    for i, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], cmap="gray_r", interpolation="nearest")
            if titles:
                color = title_colors[i] if title_colors else "black"
                ax.set_title(titles[i], fontsize=7, color=color)
    return fig


def class_samples(images: np.ndarray, labels: np.ndarray, per_class: int = 8, seed: int = 0):
    """`per_class` random samples of each class, one row per class."""
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(
        len(CLASS_NAMES), per_class, figsize=(per_class * 1.0, len(CLASS_NAMES) * 1.05)
    )
    for c, name in enumerate(CLASS_NAMES):
        idx = rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
        for j, i in enumerate(idx):
            ax = axes[c, j]
            ax.imshow(images[i], cmap="gray_r", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle("Sample images per class", y=1.0)
    return fig


def class_distribution(counts: pd.DataFrame) -> plt.Figure:
    """Side-by-side bars of images per class for each split (columns of `counts`)."""
    fig, ax = plt.subplots(figsize=(9, 3.6))
    counts.plot.bar(ax=ax, width=0.8)
    ax.set_ylabel("images")
    ax.set_xlabel("")
    ax.set_title("Class distribution")
    ax.tick_params(axis="x", rotation=30)
    return fig


def training_curves(histories: dict[str, list[dict]]) -> plt.Figure:
    """Accuracy and loss per epoch, train and validation, one column per model."""
    n = max(1, len(histories))
    fig, axes = plt.subplots(2, n, figsize=(4.2 * n, 6), squeeze=False)
    for col, (name, rows) in enumerate(histories.items()):
        frame = pd.DataFrame(rows)
        x = np.arange(1, len(frame) + 1)
        for row, metric in enumerate(("accuracy", "loss")):
            ax = axes[row, col]
            if metric in frame:
                ax.plot(x, frame[metric], marker="o", ms=3, label="train")
            if f"val_{metric}" in frame:
                ax.plot(x, frame[f"val_{metric}"], marker="o", ms=3, label="validation")
            ax.set_title(f"{name}: {metric}")
            ax.set_xlabel("epoch")
            ax.legend()
    return fig


def confusion_heatmap(cm: pd.DataFrame, title: str, fmt: str = "d") -> plt.Figure:
    """Annotated confusion-matrix heatmap."""
    fig, ax = plt.subplots(figsize=(7.5, 6.2))
    sns.heatmap(cm, annot=True, fmt=fmt, cmap="Blues", cbar=False, ax=ax, annot_kws={"size": 8})
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return fig


def reliability_diagram(table: pd.DataFrame, ece: float, title: str) -> plt.Figure:
    """Accuracy against confidence per bin, with the diagonal of perfect calibration."""
    fig, ax = plt.subplots(figsize=(4.8, 4.5))
    used = table[table["count"] > 0]
    centers = (used["lower"] + used["upper"]) / 2
    ax.bar(centers, used["accuracy"], width=used["upper"] - used["lower"], edgecolor="k",
           alpha=0.7, label="accuracy")
    ax.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{title} (ECE = {ece:.3f})")
    ax.legend(loc="upper left")
    return fig
