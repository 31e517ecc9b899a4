"""What a model looks at: occlusion sensitivity, with NumPy and a predict function only.

Nothing here imports Keras or a backend: `occlusion_map` calls `predict_fn` on uint8 images
(n, 28, 28), so a run's saved model is explained through the same preparation the run used
(`functools.partial(predict.probabilities, model, served)`: `preprocess.prepare` with the
run's `Standardizer`, and the mirror average when the run recorded `TTA`), on any backend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

RECORD_VERSION = 1
# A pixel belongs to the garment's silhouette at this grey level or above (0..255): the data
# set's backgrounds are black, and this leaves out the faint halo some images carry.
SILHOUETTE_LEVEL = 16
CHUNK = 4096  # occluded copies per call of `predict_fn`

PredictFn = Callable[[np.ndarray], np.ndarray]


def _check_settings(shape: tuple[int, ...], patch: int, stride: int, fill: int) -> None:
    """Refuse images that are not (n, h, w) and patch, stride or fill values they cannot take."""
    if len(shape) != 3 or shape[0] < 1:
        raise ValueError(
            f"images: expected a stack of grayscale images shaped (n, height, width) with "
            f"n >= 1, got shape {shape}"
        )
    side = min(shape[1:])
    if not isinstance(patch, int | np.integer) or not 1 <= patch <= side:
        raise ValueError(f"patch={patch!r}: must be an integer from 1 to the image side, {side}")
    if not isinstance(stride, int | np.integer) or stride < 1:
        raise ValueError(f"stride={stride!r}: must be an integer of at least 1")
    if not isinstance(fill, int | np.integer) or not 0 <= fill <= 255:
        raise ValueError(f"fill={fill!r}: must be a grey level from 0 to 255")


def patch_corners(side: int, patch: int, stride: int) -> np.ndarray:
    """Top (or left) edges of the patches along one side, `stride` apart, the last flush with
    the far edge so that every pixel is covered."""
    corners = list(range(0, side - patch + 1, stride))
    if corners[-1] != side - patch:
        corners.append(side - patch)
    return np.array(corners)


def occlusion_map(
    predict_fn: PredictFn,
    images: np.ndarray,
    classes: np.ndarray,
    patch: int = 4,
    stride: int = 2,
    fill: int = 0,
) -> np.ndarray:
    """Occlusion sensitivity: where blanking a patch lowers the probability of a class.

    Every image is copied once per patch position with that square set to `fill` (black, the
    data set's background, by default); all copies of all images go through `predict_fn` in
    a few large calls (`CHUNK` copies each). A pixel's value is the mean drop in the
    probability of its image's class over the patches that cover it.

    Args:
        predict_fn: uint8 images (m, h, w) -> class probabilities (m, classes), preparing
            them as the model was trained (`predict.probabilities`).
        images: uint8 images (n, h, w), as the data set stores them.
        classes: one class per image whose probability is followed (e.g. the predicted one).
        patch: side of the blanked square in pixels, 1 to the image side.
        stride: pixels between patch positions, at least 1.
        fill: grey level 0..255 the patch is set to.

    Returns:
        float32 (n, h, w): the drop in probability (negative where blanking raises it).
    """
    images = np.asarray(images)
    _check_settings(images.shape, patch, stride, fill)
    if images.dtype != np.uint8:
        raise ValueError(f"images: expected uint8 pixels 0..255 as stored, got {images.dtype}")
    classes = np.asarray(classes)
    if classes.shape != (len(images),) or not np.issubdtype(classes.dtype, np.integer):
        raise ValueError(
            f"classes: expected one integer class per image, shape ({len(images)},), "
            f"got shape {classes.shape} of {classes.dtype}"
        )
    n, h, w = images.shape
    corners = [
        (r, c) for r in patch_corners(h, patch, stride) for c in patch_corners(w, patch, stride)
    ]
    masks = np.zeros((len(corners), h, w), dtype=bool)
    for k, (r, c) in enumerate(corners):
        masks[k, r : r + patch, c : c + patch] = True
    copies = np.repeat(images[:, None], len(corners), axis=1)  # (n, positions, h, w)
    copies[:, masks] = fill
    batch = np.concatenate([images, copies.reshape(-1, h, w)])
    proba = np.concatenate(
        [_predict(predict_fn, batch[i : i + CHUNK]) for i in range(0, len(batch), CHUNK)]
    )
    if proba.ndim != 2 or classes.max() >= proba.shape[1] or classes.min() < 0:
        raise ValueError(
            f"classes: values {classes.min()}..{classes.max()} do not index the "
            f"{proba.shape[1:]} probabilities that predict_fn returns"
        )
    original = proba[np.arange(n), classes]
    occluded = proba[n:].reshape(n, len(corners), -1)[np.arange(n), :, classes]  # (n, positions)
    drop = original[:, None] - occluded
    covered = masks.sum(axis=0)
    return (np.einsum("np,phw->nhw", drop, masks.astype(np.float64)) / covered).astype(np.float32)


def _predict(predict_fn: PredictFn, images: np.ndarray) -> np.ndarray:
    """Call `predict_fn`, checking it returns one row of probabilities per image."""
    proba = np.asarray(predict_fn(images), dtype=np.float64)
    if proba.ndim != 2 or len(proba) != len(images):
        raise ValueError(
            f"predict_fn: expected probabilities shaped ({len(images)}, classes), got {proba.shape}"
        )
    return proba


def choose_examples(
    y_true: np.ndarray, y_pred: np.ndarray, per_kind: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded positions of `per_kind` correct and `per_kind` wrong predictions (fewer when
    there are fewer), each group in position order: `(correct, wrong)`."""
    if per_kind < 1:
        raise ValueError(f"per_kind={per_kind}: must be at least 1")
    rng = np.random.default_rng(seed)
    hits = np.asarray(y_true) == np.asarray(y_pred)
    groups = []
    for pool in (np.flatnonzero(hits), np.flatnonzero(~hits)):
        groups.append(np.sort(rng.choice(pool, min(per_kind, len(pool)), replace=False)))
    return groups[0], groups[1]


def silhouette(images: np.ndarray, level: int = SILHOUETTE_LEVEL) -> np.ndarray:
    """The garment's pixels: grey level `level` or above, boolean like `images`."""
    return np.asarray(images) >= level


def share_inside(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per map, the share of its positive mass (probability drops) that lies inside `masks`;
    NaN for a map with no positive value."""
    positive = np.clip(maps, 0, None).reshape(len(maps), -1)
    total = positive.sum(axis=1)
    inside = (positive * masks.reshape(len(masks), -1)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, inside / total, np.nan)


@dataclass(frozen=True)
class OcclusionRecord:
    """What `04_results` explained and what it found, for `metrics.json` -> `results.explain`.

    Positions index the model's predictions (`predictions.npz`); `test_index` names the same
    images in the official test set. `share_on_garment[i]` is the share of image i's map mass
    on its silhouette, `garment_area[i]` the silhouette's share of the image.
    """

    model: str
    patch: int
    stride: int
    fill: int
    followed: str  # which class's probability the maps follow
    positions: list[int]
    test_index: list[int]
    correct: list[bool]
    true: list[str]
    predicted: list[str]
    share_on_garment: list[float | None]
    garment_area: list[float]
    silhouette_level: int = SILHOUETTE_LEVEL
    version: int = RECORD_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> OcclusionRecord:
        if record.get("version") != RECORD_VERSION:
            raise ValueError(f"occlusion record version {record.get('version')!r}: expected 1")
        return cls(**record)

    def mean_share(self) -> float | None:
        """Mean share of the maps' mass on the garment, over the images that have one."""
        shares = [s for s in self.share_on_garment if s is not None]
        return float(np.mean(shares)) if shares else None

    def mean_area(self) -> float:
        """Mean share of the image that the garment covers."""
        return float(np.mean(self.garment_area))

    def finding(self) -> str:
        """One sentence, formatted from the record."""
        share = self.mean_share()
        if share is None:
            return f"Blanking no patch lowered {self.model}'s probability of its predicted class."
        return (
            f"On {len(self.positions)} test images, {share:.0%} of the drop in {self.model}'s "
            f"probability of its predicted class comes from patches on the garment, which "
            f"covers {self.mean_area():.0%} of the image."
        )


def occlusion_record(
    model: str,
    maps: np.ndarray,
    images: np.ndarray,
    positions: np.ndarray,
    test_index: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    settings: dict[str, int],
) -> OcclusionRecord:
    """The record of maps computed for the images at `positions` (labels given per image)."""
    from fmnist_lib.data import CLASS_NAMES

    masks = silhouette(images)
    shares = share_inside(maps, masks)
    return OcclusionRecord(
        model=model,
        patch=int(settings["patch"]),
        stride=int(settings["stride"]),
        fill=int(settings.get("fill", 0)),
        followed="predicted",
        positions=[int(p) for p in positions],
        test_index=[int(i) for i in test_index],
        correct=[bool(t == p) for t, p in zip(y_true, y_pred, strict=True)],
        true=[CLASS_NAMES[t] for t in y_true],
        predicted=[CLASS_NAMES[p] for p in y_pred],
        share_on_garment=[None if np.isnan(s) else round(float(s), 4) for s in shares],
        garment_area=[round(float(a), 4) for a in masks.reshape(len(masks), -1).mean(axis=1)],
    )
