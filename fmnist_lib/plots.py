"""Figures for notebooks and slides: one `save_fig` helper, stable names, 150+ dpi.

One colour per class (`CLASS_COLORS`) in every figure. Figures meant for a 1280x720 slide are
drawn inside `slide_style()` at the size they are shown (`SLIDE_PPI` pixels per inch), so
their smallest text is at least 14 pt on the slide.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from fmnist_lib.data import CLASS_NAMES

DPI = 150
STYLE = {"figure.dpi": 100, "savefig.dpi": DPI, "axes.titlesize": 11, "font.size": 10}
plt.rcParams.update(STYLE)
sns.set_theme(style="whitegrid", rc=STYLE)
# One colour per class, in every figure and on every slide.
CLASS_COLORS: dict[str, str] = dict(
    zip(CLASS_NAMES, sns.color_palette("tab10", len(CLASS_NAMES)).as_hex(), strict=True)
)
# Images as the data set stores them: a light garment on a black background, on every figure.
IMAGE_CMAP = "gray"
SLIDE_PPI = 96  # CSS pixels per inch: a slide figure of w inches is shown w * 96 px wide
SLIDE_WIDTH = 11.4  # inches of a full-width slide figure: 1094 px of the 1140 px content width
SLIDE_RC = {
    "font.size": 15,
    "axes.titlesize": 16,
    "axes.labelsize": 15,
    "xtick.labelsize": 14,
    "ytick.labelsize": 14,
    "legend.fontsize": 14,
    "legend.title_fontsize": 14,
    "figure.titlesize": 17,
}


@contextmanager
def slide_style() -> Iterator[None]:
    """Draw the figures created inside for a slide: no text below 14 pt."""
    with plt.rc_context(SLIDE_RC):
        yield


SMALL = 14 / 15  # the smallest text, relative to the base size: 14 pt on a slide


def _text_size(scale: float = 1.0) -> float:
    """The current base font size (points), scaled."""
    return float(plt.rcParams["font.size"]) * scale


def figures_dir(run_dir: str | os.PathLike[str]) -> Path:
    """The run's figure folder (created)."""
    path = Path(run_dir) / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_fig(fig: plt.Figure, fig_id: str, run_dir: str | os.PathLike[str]) -> Path:
    """Save `fig` as `figures/<fig_id>.png` (150 dpi) and `.svg`; return the PNG path."""
    folder = figures_dir(run_dir)
    if fig.get_layout_engine() is None:  # a figure that chose its own layout keeps it
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
            ax.imshow(images[i], cmap=IMAGE_CMAP, interpolation="nearest")
            if titles and titles[i]:
                color = title_colors[i] if title_colors else "black"
                ax.set_title(titles[i], fontsize=_text_size(SMALL), color=color, loc="left")
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
            ax.imshow(images[i], cmap=IMAGE_CMAP, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center", color=CLASS_COLORS[name])
    fig.suptitle("Sample images per class", y=1.0)
    return fig


def _framed(ax: plt.Axes, image: np.ndarray, cmap: str, color: str, width: float) -> None:
    """One image without ticks, framed in `color`."""
    ax.imshow(image, cmap=cmap, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color(color)
        spine.set_linewidth(width)


def _scatter_by_class(
    ax: plt.Axes, points: np.ndarray, labels: np.ndarray, title: str, size: float, alpha: float
) -> None:
    """2-D points coloured by class (one legend entry per class), without ticks."""
    for c, name in enumerate(CLASS_NAMES):
        pts = points[labels == c]
        ax.scatter(
            pts[:, 0],
            pts[:, 1],
            s=size,
            alpha=alpha,
            color=CLASS_COLORS[name],
            label=name,
            rasterized=True,
        )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)


def class_columns(
    images: np.ndarray,
    labels: np.ndarray,
    per_class: int,
    width: float = SLIDE_WIDTH,
    seed: int = 0,
) -> plt.Figure:
    """`per_class` random images of each class, one column per class, named above in its colour."""
    rng = np.random.default_rng(seed)
    n = len(CLASS_NAMES)
    cell = width / n
    fig, axes = plt.subplots(
        per_class, n, figsize=(width, per_class * cell + 0.5), squeeze=False, layout="constrained"
    )
    for c, name in enumerate(CLASS_NAMES):
        idx = rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
        for r, i in enumerate(idx):
            _framed(axes[r, c], images[i], IMAGE_CMAP, CLASS_COLORS[name], 2)
        axes[0, c].set_title(
            name.replace("/", "/\n"), color=CLASS_COLORS[name], fontsize=_text_size(0.95)
        )
    return fig


def class_strip(images: np.ndarray, labels: np.ndarray, rows: int = 2, seed: int = 0) -> plt.Figure:
    """`rows` images of each class, one column per class, framed in the class colour: a title
    slide's picture (no text)."""
    rng = np.random.default_rng(seed)
    n = len(CLASS_NAMES)
    fig, axes = plt.subplots(
        rows, n, figsize=(SLIDE_WIDTH, rows * SLIDE_WIDTH / n), squeeze=False, layout="constrained"
    )
    for c, name in enumerate(CLASS_NAMES):
        for r, i in enumerate(rng.choice(np.flatnonzero(labels == c), rows, replace=False)):
            _framed(axes[r, c], images[i], "gray", CLASS_COLORS[name], 4)
    return fig


def accuracy_chart(
    models: dict[str, tuple[float, float, float]],
    anchors: dict[str, float],
    size: tuple[float, float] = (SLIDE_WIDTH, 3.0),
) -> plt.Figure:
    """Each model's test accuracy as a dot with its interval (`name -> (acc, low, high)`),
    against reference accuracies drawn as labelled vertical lines."""
    fig, ax = plt.subplots(figsize=size)
    names = list(models)
    y = np.arange(len(names))[::-1]
    acc = np.array([models[m][0] for m in names])
    err = np.array([[models[m][0] - models[m][1], models[m][2] - models[m][0]] for m in names]).T
    ax.errorbar(acc, y, xerr=err, fmt="o", ms=9, color="tab:blue", capsize=6, lw=2)
    for value, yy in zip(acc, y, strict=True):
        ax.annotate(
            f"{value:.2%}", (value, yy), xytext=(0, 10), textcoords="offset points", ha="center"
        )
    for k, (label, value) in enumerate(sorted(anchors.items(), key=lambda item: item[1])):
        ax.axvline(value, color="0.45", ls="--", lw=1.2)
        ax.text(  # on a white box, so the dashed line does not run through the words;
            value,  # neighbouring labels alternate in height, so long ones do not collide
            len(names) - 0.35 + 0.5 * (k % 2),
            label,
            ha="center",
            va="bottom",
            color="0.3",
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.5},
        )
    ax.set_yticks(y, names)
    low = min(min(anchors.values(), default=1.0), float((acc - err[0]).min())) - 0.01
    ax.set_xlim(low, 1.0)
    ax.set_ylim(-0.6, len(names) + 0.1 + 0.5 * (len(anchors) > 1))
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.set_xlabel("test accuracy")
    ax.grid(axis="y", visible=False)
    return fig


def embedding_pair(
    left: tuple[np.ndarray, np.ndarray, str],
    right: tuple[np.ndarray, np.ndarray, str],
    size: tuple[float, float] = (SLIDE_WIDTH, 4.6),
) -> plt.Figure:
    """Two 2-D embeddings side by side, each `(points, labels, title)`, coloured by class,
    with one class legend for both."""
    fig, axes = plt.subplots(1, 2, figsize=size, layout="constrained")
    for ax, (points, labels, title) in zip(axes, (left, right), strict=True):
        _scatter_by_class(ax, points, labels, title, size=4, alpha=0.7)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside right center", markerscale=4, frameon=False)
    return fig


def class_distribution(counts: pd.DataFrame, size: tuple[float, float] = (9, 3.6)) -> plt.Figure:
    """Bars of images per class (in the class's colour), one bar per split (columns of
    `counts`, the first solid, the others lighter); the legend sits above the axes."""
    fig, ax = plt.subplots(figsize=size)
    width = 0.8 / len(counts.columns)
    colors = [CLASS_COLORS.get(name, "0.5") for name in counts.index]
    x = np.arange(len(counts))
    for k, split in enumerate(counts.columns):
        ax.bar(
            x + (k - (len(counts.columns) - 1) / 2) * width,
            counts[split],
            width,
            color=colors,
            alpha=1.0 if k == 0 else 0.45,
            edgecolor="0.25",
            label=split,
        )
    ax.set_xticks(x, counts.index, rotation=30, ha="right")
    ax.set_ylabel("images")
    legend = ax.legend(
        loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(counts.columns), frameon=False
    )
    for handle in legend.legend_handles:
        handle.set_facecolor("0.45")
    ax.grid(axis="x", visible=False)
    return fig


def _loss_cap(histories: dict[str, list[dict]]) -> float:
    """The top of the shared loss axis: a spike far above the rest would squash it."""
    values = [
        v
        for rows in histories.values()
        for row in rows
        for k, v in row.items()
        if k.endswith("loss")
    ]
    if not values:
        return 1.0
    return float(min(max(values), 1.5 * np.percentile(values, 95))) * 1.05


def training_curves(
    histories: dict[str, list[dict]], size: tuple[float, float] | None = None
) -> plt.Figure:
    """Accuracy and loss per epoch, train and validation, one column per model.

    Rows share their y range, epochs are whole numbers, a star marks the best validation
    epoch, and a loss spike above the shared range is drawn at its top with its value.
    """
    n = max(1, len(histories))
    size = size or (4.2 * n, 6)
    fig, axes = plt.subplots(2, n, figsize=size, squeeze=False, sharey="row")
    cap = _loss_cap(histories)
    for col, (name, rows) in enumerate(histories.items()):
        frame = pd.DataFrame(rows)
        frame.index = np.arange(1, len(frame) + 1)
        for row, metric in enumerate(("accuracy", "loss")):
            ax = axes[row, col]
            for key, label, color in (
                (metric, "train", "tab:blue"),
                (f"val_{metric}", "validation", "tab:orange"),
            ):
                if key not in frame:
                    continue
                series = frame[key].dropna()
                shown = series.clip(upper=cap) if metric == "loss" else series
                ax.plot(shown.index, shown, marker="o", ms=3, label=label, color=color)
                spikes = series[series > cap] if metric == "loss" else series.iloc[:0]
                for epoch, value in spikes.items():
                    ax.plot(epoch, cap, marker="^", ms=9, color=color)
                    ax.annotate(  # one label a line, below the marker, on a white box
                        f"{label} loss {value:,.3g}",
                        (epoch, cap),
                        xytext=(8, -16 - 18 * (label == "validation")),
                        textcoords="offset points",
                        color=color,
                        fontsize=_text_size(SMALL),
                        bbox={"facecolor": "white", "edgecolor": "none", "pad": 1},
                    )
            if (
                "val_accuracy" in frame
                and metric == "accuracy"
                and frame["val_accuracy"].notna().any()
            ):
                best = frame["val_accuracy"].idxmax()
                ax.plot(
                    best,
                    frame.loc[best, "val_accuracy"],
                    marker="*",
                    ms=14,
                    color="tab:red",
                    label="best validation",
                    ls="none",
                )
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
            ax.set_xlim(0.5, max(len(frame), 1) + 0.5)
            if len(frame) <= 3:  # a short run: one tick per epoch, never fractions
                ax.set_xticks(frame.index)
            if row == 0:
                ax.set_title(name)
            if row == 1:
                ax.set_xlabel("epoch")
                ax.set_ylim(0, cap)
            if col == 0:
                ax.set_ylabel(metric)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    for ax in axes.ravel():  # the legend of the panel that has every line
        h, lab = ax.get_legend_handles_labels()
        if len(lab) > len(labels):
            handles, labels = h, lab
    fig.legend(
        handles,
        labels,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncol=len(labels),
        frameon=False,
    )
    return fig


def confusion_heatmap(
    cm: pd.DataFrame, title: str, fmt: str = "d", size: tuple[float, float] = (7.5, 6.2)
) -> plt.Figure:
    """Annotated confusion-matrix heatmap: mistakes shaded red, right answers in green."""
    fig, ax = plt.subplots(figsize=size)
    diagonal = np.eye(len(cm), dtype=bool)
    sns.heatmap(
        cm,
        mask=diagonal,
        annot=True,
        fmt=fmt,
        cmap="Reds",
        cbar=False,
        ax=ax,
        annot_kws={"size": _text_size(SMALL)},
    )
    for k, value in enumerate(np.diag(cm.to_numpy())):  # the right answers, unshaded
        ax.text(
            k + 0.5,
            k + 0.5,
            format(value, fmt),
            ha="center",
            va="center",
            weight="bold",
            fontsize=_text_size(SMALL),
            color="tab:green",
        )
    ax.grid(False)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=35)
    plt.setp(ax.get_xticklabels(), ha="right")
    return fig


def reliability_diagram(table: pd.DataFrame, ece: float, title: str) -> plt.Figure:
    """Accuracy against confidence per bin, with the diagonal of perfect calibration."""
    fig, ax = plt.subplots(figsize=(4.8, 4.5))
    used = table[table["count"] > 0]
    centers = (used["lower"] + used["upper"]) / 2
    ax.bar(
        centers,
        used["accuracy"],
        width=used["upper"] - used["lower"],
        edgecolor="k",
        alpha=0.7,
        label="accuracy",
    )
    ax.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{title} (ECE = {ece:.3f})")
    ax.legend(loc="upper left")
    return fig


# --- exploratory analysis (01_eda) -------------------------------------------------


def class_mean_std(
    means: np.ndarray, stds: np.ndarray, size: tuple[float, float] | None = None
) -> plt.Figure:
    """Mean image (top row) and standard-deviation image (bottom row) of each class."""
    n = len(means)
    fig, axes = plt.subplots(2, n, figsize=size or (n * 1.25, 3.2))
    for c in range(n):
        for row, (stack, cmap) in enumerate(((means, IMAGE_CMAP), (stds, "magma"))):
            ax = axes[row, c]
            ax.imshow(stack[c], cmap=cmap, vmin=0, vmax=255 if row == 0 else stds.max())
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
        axes[0, c].set_title(
            CLASS_NAMES[c].replace("/", "/\n"),
            fontsize=_text_size(SMALL),
            color=CLASS_COLORS[CLASS_NAMES[c]],
        )
    axes[0, 0].set_ylabel("mean")
    axes[1, 0].set_ylabel("std")
    fig.suptitle("Mean and standard deviation of each pixel, per class", y=1.0)
    return fig


def pixel_histogram(counts: dict[str, np.ndarray]) -> plt.Figure:
    """Share of pixels at each grey level (log scale), one line per split."""
    fig, ax = plt.subplots(figsize=(8, 3.4))
    for (name, values), style in zip(counts.items(), ("-", "--", ":", "-."), strict=False):
        ax.step(np.arange(len(values)), values / values.sum(), where="mid", ls=style, label=name)
    ax.set_yscale("log")
    ax.set_xlim(-2, 257)
    ax.set_xlabel("grey level (0 = background, 255 = full ink)")
    ax.set_ylabel("share of pixels")
    ax.set_title("Pixel-intensity histogram")
    ax.legend()
    return fig


def _tiles(images: np.ndarray, ncols: int, gap_x: int, gap_y: int) -> np.ndarray:
    """Tile (n, h, w) images into one array row by row; gaps and empty tiles are NaN."""
    n, h, w = images.shape
    nrows = max(1, -(-n // ncols))
    tiles = np.full((nrows * ncols, h + gap_y, w + gap_x), np.nan)
    tiles[:n, :h, :w] = images
    canvas = tiles.reshape(nrows, ncols, h + gap_y, w + gap_x).transpose(0, 2, 1, 3)
    return canvas.reshape(nrows * (h + gap_y), ncols * (w + gap_x))[:, :-gap_x]


def captioned_tiles(
    images: np.ndarray,
    captions: list[str],
    ncols: int,
    colors: list[str] | None = None,
    row_names: list[str] | None = None,
    gap_x: int = 6,
    inches_per_pixel: float = 1.1 / 28,
    fontsize: float = 8,
) -> plt.Figure:
    """Images as tiles of one picture, a caption under each (fast for many images).

    Args:
        images: (n, h, w) grey levels 0..255; NaN pixels are drawn white.
        captions: one line (or two, joined by a newline) per image.
        ncols: tiles per row.
        colors: caption colour per image (default black).
        row_names: a label left of each row of tiles.
        gap_x: blank pixels between tiles in a row.
    """
    h, w = images.shape[1:]
    lines = 1 + max(c.count("\n") for c in captions)
    line_px = fontsize * 1.3 / 72 / inches_per_pixel  # caption line height in image pixels
    gap_y = 3 + int(np.ceil(lines * line_px))
    canvas = _tiles(images, ncols, gap_x, gap_y)
    fig, ax = plt.subplots(
        figsize=(canvas.shape[1] * inches_per_pixel, canvas.shape[0] * inches_per_pixel)
    )
    cmap = plt.get_cmap(IMAGE_CMAP).with_extremes(bad="white")
    ax.imshow(canvas, cmap=cmap, vmin=0, vmax=255, interpolation="nearest")
    ax.axis("off")
    for k, caption in enumerate(captions):
        row, col = divmod(k, ncols)
        x, y = col * (w + gap_x) + w / 2, row * (h + gap_y) + h + 1
        color = colors[k] if colors else "black"
        ax.text(x, y, caption, ha="center", va="top", fontsize=fontsize, color=color)
    for row, name in enumerate(row_names or []):
        ax.text(-3, row * (h + gap_y) + h / 2, name, ha="right", va="center", fontsize=fontsize + 1)
    return fig


def image_pairs(
    images: np.ndarray,
    pairs: np.ndarray,
    captions: list[str],
    colors: list[str] | None = None,
    ncols: int = 5,
) -> plt.Figure:
    """Pairs of images side by side (left `pairs[:, 0]`, right `pairs[:, 1]`), captioned."""
    gap = np.full((len(pairs), images.shape[1], 2), np.nan)
    joined = np.concatenate([images[pairs[:, 0]], gap, images[pairs[:, 1]]], axis=2)
    return captioned_tiles(joined, captions, ncols, colors, gap_x=16, inches_per_pixel=0.95 / 28)


def class_rows(
    images: np.ndarray, rows: list[np.ndarray], row_names: list[str], captions: list[list[str]]
) -> plt.Figure:
    """One row of captioned images per class; `rows[r]` indexes `images`."""
    ncols = max(len(r) for r in rows)
    h, w = images.shape[1:]
    grid = np.full((len(rows), ncols, h, w), np.nan)
    flat_captions = [""] * (len(rows) * ncols)
    for r, idx in enumerate(rows):  # one iteration per class
        grid[r, : len(idx)] = images[idx]
        flat_captions[r * ncols : r * ncols + len(idx)] = captions[r]
    return captioned_tiles(grid.reshape(-1, h, w), flat_captions, ncols, row_names=row_names)


def score_scatter(
    x: np.ndarray, y: np.ndarray, threshold: float, xlabel: str, ylabel: str
) -> plt.Figure:
    """Two outlier scores against each other, with the flagging threshold on each axis."""
    fig, ax = plt.subplots(figsize=(5.6, 5))
    ax.scatter(x, y, s=2, alpha=0.25, color="tab:blue", rasterized=True)
    ax.axvline(threshold, color="tab:red", ls="--", lw=1)
    ax.axhline(threshold, color="tab:red", ls="--", lw=1, label=f"threshold {threshold:g}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title("Do the two outlier scores agree?")
    ax.legend(loc="upper right")
    return fig


def explained_variance(ratio: np.ndarray, kept: int) -> plt.Figure:
    """Cumulative explained variance of the principal components, with the number kept."""
    cumulative = np.cumsum(ratio)
    x = np.arange(1, len(ratio) + 1)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.plot(x, cumulative, color="tab:blue")
    ax.axvline(kept, color="tab:red", ls="--", lw=1)
    ax.annotate(
        f"{kept} components: {cumulative[kept - 1]:.1%}",
        (kept, cumulative[kept - 1]),
        xytext=(12, -30),
        textcoords="offset points",
        color="tab:red",
    )
    ax.set_xscale("log")
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("principal components (log scale)")
    ax.set_ylabel("cumulative share of variance")
    ax.set_title("PCA explained variance")
    return fig


def embedding_scatter(embedding: np.ndarray, labels: np.ndarray, title: str) -> plt.Figure:
    """A 2-D embedding coloured by class, with the class legend outside the axes."""
    fig, ax = plt.subplots(figsize=(8, 6.2))
    _scatter_by_class(ax, embedding, labels, title, size=3, alpha=0.6)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=4, frameon=False)
    return fig


def contingency_heatmap(
    table: pd.DataFrame, title: str, size: tuple[float, float] = (9, 6.2)
) -> plt.Figure:
    """Annotated cluster-by-class counts, shaded by each class's share in the cluster."""
    fig, ax = plt.subplots(figsize=size)
    shares = table / table.sum(axis=0)
    sns.heatmap(
        shares,
        annot=table,
        fmt="d",
        cmap="Blues",
        cbar_kws={"label": "share of class"},
        ax=ax,
        annot_kws={"size": _text_size(SMALL)},
    )
    ax.set_xlabel("true class")
    ax.set_ylabel("k-means cluster (majority class)")
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=35)
    plt.setp(ax.get_xticklabels(), ha="right")
    return fig


# --- results (04_results) and presentation (05_presentation) -------------------------


def confusion_pair(counts: pd.DataFrame, normalised: pd.DataFrame, title: str) -> plt.Figure:
    """Confusion matrix as counts (left) and row-normalised shares (right)."""
    fig, axes = plt.subplots(1, 2, figsize=(15, 6.4))
    for ax, cm, fmt, name in (
        (axes[0], counts, "d", "counts"),
        (axes[1], normalised, ".2f", "share of each true class"),
    ):
        sns.heatmap(
            cm,
            annot=True,
            fmt=fmt,
            cmap="Blues",
            cbar=False,
            ax=ax,
            annot_kws={"size": _text_size(SMALL)},
        )
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(name)
        ax.tick_params(axis="x", rotation=35)
        plt.setp(ax.get_xticklabels(), ha="right")
    axes[1].set_ylabel("")
    fig.suptitle(title)
    return fig


def prediction_panels(
    images: np.ndarray,
    true: list[str],
    top_classes: list[list[str]],
    top_probs: np.ndarray,
    ncols: int = 5,
    size: tuple[float, float] | None = None,
) -> plt.Figure:
    """Each test image over a bar chart of its top-k probabilities (green: the true class)."""
    n = len(images)
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(
        2 * nrows,
        ncols,
        figsize=size or (ncols * 2.6, nrows * 4.2),
        height_ratios=[1.6, 1] * nrows,
    )
    axes = np.atleast_2d(axes)
    for k in range(nrows * ncols):
        row, col = divmod(k, ncols)
        ax_img, ax_bar = axes[2 * row, col], axes[2 * row + 1, col]
        ax_img.axis("off")
        if k >= n:
            ax_bar.axis("off")
            continue
        ax_img.imshow(images[k], cmap=IMAGE_CMAP, interpolation="nearest")
        ok = top_classes[k][0] == true[k]
        ax_img.set_title(true[k], fontsize=_text_size(0.95), color="black" if ok else "tab:red")
        labels = top_classes[k][::-1]
        colors = ["tab:green" if c == true[k] else "tab:gray" for c in labels]
        ax_bar.barh(labels, top_probs[k][::-1], color=colors)
        ax_bar.set_xlim(0, 1)
        ax_bar.tick_params(labelsize=_text_size(SMALL))
        ax_bar.set_xticks([0, 1], ["0", "1"])
        ax_bar.grid(axis="y", visible=False)
    return fig


def system_flow(stages: list[dict], size: tuple[float, float] = (SLIDE_WIDTH, 5.6)) -> plt.Figure:
    """The ML system as boxes and arrows, left to right in rows, each box a stage.

    Args:
        stages: dicts with `title`, `lines` (a few short lines), `row` (0 = top), `kind`
            (`data`, `step`, `artifact`, `serve`, `watch` or `planned`: the box colour; a
            planned stage is drawn dashed) and optionally
            `to` (titles of the stages it feeds; default: the next stage in its row).
        size: figure size in inches.
    """
    colors = {
        "data": "#fde9c9",
        "step": "#dbe8f6",
        "artifact": "#e2f0d9",
        "serve": "#f4dede",
        "watch": "#eeeeee",
        "planned": "white",
    }
    rows = sorted({s["row"] for s in stages})
    fig, ax = plt.subplots(figsize=size)
    ax.set_xlim(0, size[0])
    ax.set_ylim(0, size[1])
    ax.axis("off")
    row_h = size[1] / len(rows)
    where: dict[str, tuple[float, float, float, float]] = {}
    kinds = {s["title"]: s["kind"] for s in stages}
    for r in rows:
        in_row = [s for s in stages if s["row"] == r]
        w = size[0] / len(in_row)
        for k, stage in enumerate(in_row):
            x0, y0 = k * w + 0.12, size[1] - (r + 1) * row_h + 0.25
            bw, bh = w - 0.55, row_h - 0.5
            where[stage["title"]] = (x0, y0, bw, bh)
            ax.add_patch(
                plt.Rectangle(  # a planned stage is a dashed outline: not built
                    (x0, y0),
                    bw,
                    bh,
                    facecolor=colors[stage["kind"]],
                    edgecolor="0.35",
                    lw=1.2,
                    ls="--" if stage["kind"] == "planned" else "-",
                )
            )
            ax.text(x0 + 0.1, y0 + bh - 0.12, stage["title"], ha="left", va="top", weight="bold")
            ax.text(
                x0 + 0.1,
                y0 + bh - 0.5,
                "\n".join(stage["lines"]),
                ha="left",
                va="top",
                fontsize=_text_size(SMALL),
                linespacing=1.25,
            )
    for r in rows:
        in_row = [s for s in stages if s["row"] == r]
        for k, stage in enumerate(in_row):
            targets = stage.get("to", [in_row[k + 1]["title"]] if k + 1 < len(in_row) else [])
            for target in targets:
                x0, y0, bw, bh = where[stage["title"]]
                x1, y1, _, bh1 = where[target]
                bw1 = where[target][2]
                same_row = abs(y1 - y0) < 1e-6
                if same_row:
                    start, end = (x0 + bw, y0 + bh / 2), (x1, y1 + bh1 / 2)
                elif y1 < y0:  # down to the next row
                    start, end = (x0 + bw / 2, y0), (x1 + 0.3, y1 + bh1)
                else:  # back up: a loop to an earlier stage
                    start, end = (x0 + bw / 2, y0 + bh), (x1 + bw1 / 2, y1)
                planned = "planned" in (stage["kind"], kinds[target])
                ax.annotate(
                    "",
                    end,
                    start,
                    arrowprops={
                        "arrowstyle": "-|>",
                        "color": "0.3",
                        "lw": 1.6,
                        "ls": "--" if planned else "-",
                    },
                )
    return fig


# --- sweeps (06_sweep_results) ----------------------------------------------------------


def accuracy_by_parameter(table: pd.DataFrame, varied: list[str]) -> plt.Figure:
    """Validation and test accuracy of every finished sweep point against each varied parameter."""
    done = table[table["status"] == "done"].reset_index()
    long = done.melt(
        id_vars=[*varied, "model"],
        value_vars=["val accuracy", "test accuracy"],
        var_name="split",
        value_name="accuracy",
    )
    long["series"] = long["model"] + ", " + long["split"].str.replace(" accuracy", "")
    fig, axes = plt.subplots(1, len(varied), figsize=(4.5 * len(varied), 3.6), squeeze=False)
    for ax, key in zip(axes[0], varied, strict=True):
        long[key] = long[key].astype(str)
        order = [str(v) for v in dict.fromkeys(done[key])]
        sns.pointplot(long, x=key, y="accuracy", hue="series", order=order, ax=ax, errorbar=None)
        sns.stripplot(
            long,
            x=key,
            y="accuracy",
            hue="series",
            order=order,
            ax=ax,
            alpha=0.4,
            legend=False,
            dodge=False,
        )
        ax.set_title(f"accuracy against {key}")
    return fig


# --- label errors (03_label_errors) ------------------------------------------------------


def label_suspects(
    images: np.ndarray,
    given: list[str],
    predicted: list[str],
    p_given: list[float],
    p_predicted: list[float],
    names: list[str],
    ncols: int = 8,
    size: float = 1.55,
) -> plt.Figure:
    """The images confident learning ranks most likely mislabelled, framed in the colour of the
    class the model sees; over each, the given label and the model's class with both
    out-of-fold probabilities, each in its class colour; under it, where the image is."""
    n = len(images)
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * (size + 0.75)))
    for k, ax in enumerate(np.atleast_1d(axes).ravel()):
        if k >= n:
            ax.axis("off")
            continue
        _framed(ax, images[k], IMAGE_CMAP, CLASS_COLORS[predicted[k]], 2.5)
        small = _text_size(SMALL * 0.85)
        ax.set_title(
            f"given {given[k]} {p_given[k]:.2f}",
            fontsize=small,
            color=CLASS_COLORS[given[k]],
            loc="left",
            pad=12,
        )
        ax.text(
            0,
            1.02,
            f"model {predicted[k]} {p_predicted[k]:.2f}",
            transform=ax.transAxes,
            fontsize=small,
            color=CLASS_COLORS[predicted[k]],
            va="bottom",
        )
        ax.set_xlabel(names[k], fontsize=small)
    return fig


def label_noise_joint(joint: np.ndarray, title: str) -> plt.Figure:
    """The calibrated confident joint off its diagonal: estimated images per (given, true) pair."""
    off = np.asarray(joint, dtype=float).copy()
    np.fill_diagonal(off, np.nan)
    fig, ax = plt.subplots(figsize=(7.2, 6))
    sns.heatmap(
        pd.DataFrame(off, index=list(CLASS_NAMES), columns=list(CLASS_NAMES)),
        annot=True,
        fmt=".0f",
        cmap="Reds",
        cbar_kws={"label": "estimated images"},
        ax=ax,
    )
    ax.set_xlabel("true label (estimated)")
    ax.set_ylabel("given label")
    ax.set_title(title)
    return fig


def normalisation_curves(standardised: list[float], raw: list[float], title: str) -> plt.Figure:
    """Held-out accuracy per epoch of the same fold and seed, standardised against raw pixels."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    epochs = np.arange(1, len(standardised) + 1)
    ax.plot(epochs, standardised, marker="o", label="standardised pixels")
    ax.plot(epochs, raw, marker="s", label="raw 0-255 pixels")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("held-out accuracy")
    ax.set_title(title)
    ax.legend()
    return fig


# --- what the model looks at, and what each model costs (04_results; for slides) ---------

# One colour per model (the classes use tab10), in every cost figure.
MODEL_COLORS: dict[str, str] = dict(
    zip(("mlp", "cnn", "resnet50"), sns.color_palette("Dark2", 3).as_hex(), strict=True)
)
HEAT_COLOR = "#ff2a1a"  # occlusion overlay: opaque where blanking a patch costs the most


def _model_color(name: str, k: int) -> str:
    """The model's colour; an unknown model gets a further Dark2 colour."""
    return MODEL_COLORS.get(name) or sns.color_palette("Dark2", 8).as_hex()[(3 + k) % 8]


def occlusion_overlay(image: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """RGB (h, w, 3) in 0..1: the grey image with `HEAT_COLOR` blended in where `heat` is
    positive, fully at the image's largest drop (scaled per image)."""
    grey = np.repeat((np.asarray(image, dtype=float) / 255)[..., None], 3, axis=2)
    peak = float(np.max(heat))
    alpha = (np.clip(heat, 0, None) / peak if peak > 0 else np.zeros_like(heat))[..., None]
    red = np.array(plt.matplotlib.colors.to_rgb(HEAT_COLOR))
    return np.clip((1 - 0.85 * alpha) * grey + 0.85 * alpha * red, 0, 1)


def occlusion_panels(
    images: np.ndarray,
    maps: np.ndarray,
    true: list[str],
    predicted: list[str],
    confidence: np.ndarray,
    size: tuple[float, float] = (SLIDE_WIDTH, 5.4),
) -> plt.Figure:
    """Correct predictions (left group) and mistakes (right group): each test image as the
    data set shows it (light garment on black) over the same image with its occlusion map
    in red, titled with the true class and the model's answer.

    Args:
        images: uint8 (n, h, w).
        maps: (n, h, w) drops in the predicted class's probability (`explain.occlusion_map`).
        true, predicted: class names per image; correct ones are grouped first.
        confidence: the predicted class's probability per image.
        size: inches; the default fills a 1280x720 slide's width, text at 14 pt or more.
    """
    ok = [t == p for t, p in zip(true, predicted, strict=True)]
    groups = [
        (title, [i for i in range(len(images)) if ok[i] == want])
        for title, want in (("correct predictions", True), ("mistakes", False))
    ]
    groups = [(title, idx) for title, idx in groups if idx]
    # One grid for every image, so all are drawn at one size; a narrow gap between groups.
    widths = [w for k, (_, idx) in enumerate(groups) for w in ([0.2] * (k > 0) + [1] * len(idx))]
    fig = plt.figure(figsize=size, layout="constrained")
    grid = fig.add_gridspec(3, len(widths), width_ratios=widths, height_ratios=[0.14, 1, 1])
    first = 0
    for k, (title, idx) in enumerate(groups):
        first += k > 0  # the gap column
        heading = fig.add_subplot(grid[0, first : first + len(idx)])
        heading.axis("off")
        heading.text(
            0.5, 0.5, title, ha="center", va="center", weight="bold", fontsize=_text_size(16 / 15)
        )
        for col, i in enumerate(idx, first):
            top, bottom = fig.add_subplot(grid[1, col]), fig.add_subplot(grid[2, col])
            _framed(top, images[i], "gray", "0.6", 0.8)
            top.images[-1].set_clim(0, 255)
            top.set_title(true[i], color="black")
            _framed(bottom, occlusion_overlay(images[i], maps[i]), "gray", "0.6", 0.8)
            bottom.set_title(
                f"→ {predicted[i]}\n{confidence[i]:.0%}",  # two lines: long names do not collide
                color="tab:green" if ok[i] else "tab:red",
            )
            if col == 0:
                top.set_ylabel("image")
                bottom.set_ylabel("looked at")
        first += len(idx)
    return fig


def _number(value) -> float:
    """A table cell as a float: NaN for a word such as "not measured"."""
    return float(value) if isinstance(value, int | float | np.number) else float("nan")


def _count(n: float) -> str:
    """A parameter count in a few characters: 391k, 24.1M."""
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}k"


def cost_chart(
    costs: pd.DataFrame,
    accuracy: dict[str, tuple[float, float, float]],
    size: tuple[float, float] = (SLIDE_WIDTH, 4.8),
) -> plt.Figure:
    """Test accuracy (dot, 95% interval as bars; `name -> (acc, low, high)`) against training
    time (left) and inference milliseconds per image at the large batch (right), both on log
    scales, one colour per model, each labelled with its parameters (and trained ones when
    fewer). `costs` is `report.cost_table`; models whose cost was not measured are named."""
    fig, axes = plt.subplots(1, 2, figsize=size, sharey=True, layout="constrained")
    panels = (
        ("train time (s)", "training time (s, log scale)"),
        ("ms/image, large batch", "inference ms per image, large batch (log scale)"),
    )
    for ax, (column, label) in zip(axes, panels, strict=True):
        values = costs[column].map(_number)
        shown = [name for name in costs.index if not np.isnan(values[name]) and name in accuracy]
        missing = [name for name in costs.index if name not in shown]
        ax.set_xscale("log")
        ax.set_xlabel(label)
        if not shown:
            ax.text(
                0.5,
                0.5,
                "not measured in this run",
                transform=ax.transAxes,
                ha="center",
                va="center",
                color="0.4",
            )
            ax.set_xticks([])
            ax.minorticks_off()
            ax.grid(False)
            continue
        # Room for the labels: a decade and a half around the points, in log space.
        lo, hi = np.log10(values[shown].min()), np.log10(values[shown].max())
        ax.set_xlim(10 ** (lo - 0.6), 10 ** (hi + 0.6 + max(0.0, 1.2 - (hi - lo))))
        left, right = (np.log10(v) for v in ax.get_xlim())
        for k, name in enumerate(costs.index):
            if name not in shown:
                continue
            acc, low, high = accuracy[name]
            color = _model_color(name, k)
            ax.errorbar(
                values[name],
                acc,
                yerr=[[acc - low], [high - acc]],
                fmt="o",
                ms=10,
                color=color,
                capsize=6,
                lw=2,
            )
            params, trained = (
                _number(costs.loc[name, key]) for key in ("parameters", "trainable parameters")
            )
            text = name if np.isnan(params) else f"{name}, {_count(params)} params"
            if trained < 0.9 * params:  # False when either is NaN
                text += f"\n({_count(trained)} trained)"
            on_right = (np.log10(values[name]) - left) / (right - left) < 0.55
            ax.annotate(
                text,
                (values[name], acc),
                xytext=(12 if on_right else -12, 0),
                textcoords="offset points",
                va="center",
                ha="left" if on_right else "right",
                color=color,
            )
        ax.xaxis.set_major_locator(plt.matplotlib.ticker.LogLocator(subs=(1, 2, 5)))
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(plt.matplotlib.ticker.NullFormatter())
        if missing:
            ax.text(
                0.02,
                0.02,
                f"not measured: {', '.join(missing)}",
                transform=ax.transAxes,
                ha="left",
                va="bottom",
                color="0.4",
            )
    axes[0].set_ylabel("test accuracy")
    axes[0].yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    return fig
