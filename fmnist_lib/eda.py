"""Exploratory analysis: dataset description, class balance and pixel statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fmnist_lib.data import CLASS_NAMES, CSV_HEADER, FashionMNIST


def describe(ds: FashionMNIST) -> pd.DataFrame:
    """One row per split: size, image shape, dtype, source, file paths and MD5s."""
    rows = []
    for split, x, y in (("train", ds.x_train, ds.y_train), ("test", ds.x_test, ds.y_test)):
        images, labels = ds.files.get(f"{split}_images"), ds.files.get(f"{split}_labels")
        rows.append(
            {
                "split": split,
                "images": len(x),
                "image shape": "x".join(map(str, x.shape[1:])),
                "dtype": str(x.dtype),
                "labels": len(y),
                "source": ds.source,
                "images MD5": images.md5 if images else "",
                "labels MD5": labels.md5 if labels else "",
                "verified": bool(images and labels and images.verified and labels.verified),
            }
        )
    return pd.DataFrame(rows).set_index("split")


def class_table() -> pd.DataFrame:
    """The ten class ids and names."""
    return pd.DataFrame({"class": list(CLASS_NAMES)}).rename_axis("id")


def flat_view(images: np.ndarray, labels: np.ndarray, n: int = 1) -> pd.DataFrame:
    """The first `n` images as rows of the 785-column CSV layout (label, pixel1..784)."""
    flat = images[:n].reshape(n, -1)
    return pd.DataFrame(np.column_stack([labels[:n], flat]), columns=CSV_HEADER)


def class_distribution(ds: FashionMNIST) -> pd.DataFrame:
    """Images per class for train and test, as counts and shares."""
    counts = pd.DataFrame(
        {
            "train": np.bincount(ds.y_train, minlength=len(CLASS_NAMES)),
            "test": np.bincount(ds.y_test, minlength=len(CLASS_NAMES)),
        },
        index=list(CLASS_NAMES),
    )
    shares = counts / counts.sum()
    return counts.join(shares.add_suffix(" share"))


def is_balanced(counts: pd.Series, tolerance: float = 0.05) -> bool:
    """True when every class count is within `tolerance` of the mean count."""
    mean = counts.mean()
    return bool(((counts - mean).abs() <= tolerance * mean).all())


def pixel_stats(images: np.ndarray, labels: np.ndarray) -> dict[str, object]:
    """Overall mean/std (0..255 scale), share of zero pixels, and mean ink per class."""
    flat = images.reshape(len(images), -1)
    per_image_mean = flat.mean(axis=1, dtype=np.float64)
    per_class = pd.Series(
        np.bincount(labels, weights=per_image_mean) / np.bincount(labels),
        index=list(CLASS_NAMES),
        name="mean ink",
    )
    return {
        "mean": float(flat.mean(dtype=np.float64)),
        "std": float(flat.std(dtype=np.float64)),
        "zero_share": float((flat == 0).mean()),
        "per_class_mean": per_class,
    }
