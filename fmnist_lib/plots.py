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
            if titles and titles[i]:
                color = title_colors[i] if title_colors else "black"
                ax.set_title(titles[i], fontsize=8, color=color, loc="left")
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


def class_mean_std(means: np.ndarray, stds: np.ndarray) -> plt.Figure:
    """Mean image (top row) and standard-deviation image (bottom row) of each class."""
    n = len(means)
    fig, axes = plt.subplots(2, n, figsize=(n * 1.25, 3.2))
    for c in range(n):
        for row, (stack, cmap) in enumerate(((means, "gray_r"), (stds, "magma"))):
            ax = axes[row, c]
            ax.imshow(stack[c], cmap=cmap, vmin=0, vmax=255 if row == 0 else stds.max())
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
        axes[0, c].set_title(CLASS_NAMES[c], fontsize=9)
    axes[0, 0].set_ylabel("mean", fontsize=10)
    axes[1, 0].set_ylabel("std", fontsize=10)
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
    cmap = plt.get_cmap("gray_r").with_extremes(bad="white")
    ax.imshow(canvas, cmap=cmap, vmin=0, vmax=255, interpolation="nearest")
    ax.axis("off")
    for k, caption in enumerate(captions):
        row, col = divmod(k, ncols)
        x, y = col * (w + gap_x) + w / 2, row * (h + gap_y) + h + 1
        color = colors[k] if colors else "black"
        ax.text(x, y, caption, ha="center", va="top", fontsize=fontsize, color=color)
    for row, name in enumerate(row_names or []):
        ax.text(-3, row * (h + gap_y) + h / 2, name, ha="right", va="center", fontsize=9)
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
    palette = sns.color_palette("tab10", len(CLASS_NAMES))
    for c, name in enumerate(CLASS_NAMES):
        pts = embedding[labels == c]
        ax.scatter(
            pts[:, 0], pts[:, 1], s=3, alpha=0.6, color=palette[c], label=name, rasterized=True
        )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=4, frameon=False)
    return fig


def contingency_heatmap(table: pd.DataFrame, title: str) -> plt.Figure:
    """Annotated cluster-by-class counts, shaded by each class's share in the cluster."""
    fig, ax = plt.subplots(figsize=(9, 6.2))
    shares = table / table.sum(axis=0)
    sns.heatmap(
        shares,
        annot=table,
        fmt="d",
        cmap="Blues",
        cbar_kws={"label": "share of class"},
        ax=ax,
        annot_kws={"size": 8},
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
        sns.heatmap(cm, annot=True, fmt=fmt, cmap="Blues", cbar=False, ax=ax, annot_kws={"size": 8})
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
) -> plt.Figure:
    """Each test image over a bar chart of its top-k probabilities (green: the true class)."""
    n = len(images)
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(
        2 * nrows, ncols, figsize=(ncols * 2.6, nrows * 4.2), height_ratios=[1.6, 1] * nrows
    )
    axes = np.atleast_2d(axes)
    for k in range(nrows * ncols):
        row, col = divmod(k, ncols)
        ax_img, ax_bar = axes[2 * row, col], axes[2 * row + 1, col]
        ax_img.axis("off")
        if k >= n:
            ax_bar.axis("off")
            continue
        ax_img.imshow(images[k], cmap="gray_r", interpolation="nearest")
        ok = top_classes[k][0] == true[k]
        ax_img.set_title(f"true: {true[k]}", fontsize=9, color="black" if ok else "tab:red")
        labels = top_classes[k][::-1]
        colors = ["tab:green" if c == true[k] else "tab:gray" for c in labels]
        ax_bar.barh(labels, top_probs[k][::-1], color=colors)
        ax_bar.set_xlim(0, 1)
        ax_bar.tick_params(labelsize=8)
        ax_bar.set_xticks([0, 0.5, 1])
        ax_bar.grid(axis="y", visible=False)
    return fig


def system_design(
    notebooks: list[str],
    modules: list[str],
    uses: dict[str, list[str]],
    tests: dict[str, list[str]],
    artifacts: list[str],
) -> plt.Figure:
    """Data flow: profile -> papermill -> notebooks -> run folder, the modules and tests behind.

    Args:
        notebooks: notebook names in run order.
        modules: `fmnist_lib` module names.
        uses: notebook -> the modules it imports.
        tests: test file -> the modules it imports.
        artifacts: what a run folder holds.
    """
    fig, ax = plt.subplots(figsize=(13, 7.2))
    ax.set_xlim(0, 13)
    ax.set_ylim(0, 7.2)
    ax.axis("off")

    def box(x, y, text, color, w=1.7, h=0.5, size=9):
        ax.add_patch(
            plt.Rectangle((x - w / 2, y - h / 2), w, h, facecolor=color, edgecolor="0.3", lw=1)
        )
        ax.text(x, y, text, ha="center", va="center", fontsize=size)

    def arrow(x0, y0, x1, y1, color="0.35", lw=1.2, alpha=1.0):
        ax.annotate(
            "",
            (x1, y1),
            (x0, y0),
            arrowprops={"arrowstyle": "->", "color": color, "lw": lw, "alpha": alpha},
        )

    # Top lane: how a run is driven.
    box(1.2, 6.5, "params/*.yaml\nprofile", "#fde9c9", h=0.7)
    box(3.4, 6.5, "python -m fmnist_lib run\n(pipeline, papermill)", "#fde9c9", w=2.4, h=0.7)
    arrow(2.05, 6.5, 2.2, 6.5)
    box(11.4, 6.5, "runs/<id>/", "#e2f0d9", h=0.7)
    # Middle lane: the notebooks in run order, executed into the run folder.
    xs = np.linspace(1.2, 9.0, len(notebooks))
    for x, name in zip(xs, notebooks, strict=True):
        box(x, 4.9, f"{name}.ipynb", "#dbe8f6", w=1.75)
    for x0, x1 in zip(xs[:-1], xs[1:], strict=True):
        arrow(x0 + 0.88, 4.9, x1 - 0.88, 4.9)
    arrow(3.4, 6.15, xs[0], 5.15)
    ax.text(
        6.4,
        5.55,
        "executed in order by papermill, each into the run folder",
        fontsize=9,
        ha="center",
        style="italic",
        color="0.3",
    )
    arrow(xs[-1] + 0.88, 4.9, 10.5, 6.3)
    for i, name in enumerate(artifacts):
        ax.text(11.4, 5.95 - i * 0.33, name, ha="center", va="center", fontsize=8.5)
    # Bottom lane: the library modules, with the notebooks that import them.
    mx = np.linspace(0.8, 12.2, len(modules))
    where = dict(zip(modules, mx, strict=True))
    for x, name in zip(mx, modules, strict=True):
        box(x, 2.6, name, "#eeeeee", w=1.0, h=0.45, size=8.5)
    ax.text(0.3, 3.05, "fmnist_lib", fontsize=10, weight="bold", ha="left")
    for x, name in zip(xs, notebooks, strict=True):
        for module in uses.get(name, []):
            if module in where:
                arrow(x, 4.65, where[module], 2.83, color="tab:blue", lw=0.8, alpha=0.35)
    # Tests: each file under the module it checks.
    tx = np.linspace(0.8, 12.2, max(1, len(tests)))
    for x, (name, imported) in zip(tx, tests.items(), strict=False):
        box(x, 0.8, name, "#f4dede", w=1.15, h=0.45, size=7.5)
        for module in imported:
            if module in where:
                arrow(x, 1.03, where[module], 2.37, color="tab:red", lw=0.8, alpha=0.35)
    ax.text(
        0.3,
        0.2,
        "tests/ (pytest; nbval re-runs the notebooks; make test)",
        fontsize=9,
        ha="left",
        color="0.3",
    )
    ax.set_title("How data and code flow through the project", fontsize=13)
    return fig
