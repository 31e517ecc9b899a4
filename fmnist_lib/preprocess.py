"""Preprocessing in NumPy (plus backend-neutral `keras.ops`), so every Keras backend runs it.

Scaling and standardising for the dense and convolutional baselines; grayscale to three
channels, resizing and `resnet50.preprocess_input` for ResNet50; and seeded NumPy
augmentation (flip, pad-and-crop shift, random erasing) fed through a `PyDataset`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MIN_RESNET_SIZE = 32


@dataclass(frozen=True)
class Standardizer:
    """Mean and standard deviation of [0, 1]-scaled training pixels."""

    mean: float
    std: float

    @classmethod
    def fit(cls, images: np.ndarray) -> Standardizer:
        """Compute the statistics from uint8 training images."""
        scaled = scale(images)
        return cls(float(scaled.mean()), float(scaled.std()))

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Scale uint8 images to [0, 1], then standardise to zero mean and unit variance."""
        return ((scale(images) - self.mean) / self.std).astype(np.float32)


def scale(images: np.ndarray) -> np.ndarray:
    """uint8 0..255 -> float32 0..1."""
    return np.asarray(images, dtype=np.float32) / 255.0


def to_rgb(images: np.ndarray) -> np.ndarray:
    """(n, h, w) grayscale -> (n, h, w, 3) by repeating the channel."""
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    return np.repeat(images[..., None], 3, axis=-1)


def resize(images: np.ndarray, size: int, batch_size: int = 4096) -> np.ndarray:
    """Bilinear resize of (n, h, w, c) float images to (n, size, size, c), in batches."""
    import keras

    if images.shape[1:3] == (size, size):
        return np.asarray(images, dtype=np.float32)
    out = np.empty((len(images), size, size, images.shape[-1]), dtype=np.float32)
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].astype(np.float32)
        resized = keras.ops.image.resize(batch, (size, size), interpolation="bilinear")
        out[start : start + batch_size] = keras.ops.convert_to_numpy(resized)
    return out


def check_image_size(image_size: int) -> int:
    """Refuse ResNet50 input sizes below its minimum of 32."""
    if not isinstance(image_size, int) or image_size < MIN_RESNET_SIZE:
        raise ValueError(
            f"IMAGE_SIZE={image_size!r}: ResNet50 needs at least {MIN_RESNET_SIZE}x"
            f"{MIN_RESNET_SIZE} inputs; use 32 or more"
        )
    return image_size


def resnet_inputs(images: np.ndarray, image_size: int) -> np.ndarray:
    """uint8 (n, 28, 28) -> ResNet50 inputs: 3 channels, resized, `preprocess_input` applied."""
    from keras.applications import resnet50

    check_image_size(image_size)
    rgb = to_rgb(np.asarray(images, dtype=np.float32))
    return resnet50.preprocess_input(resize(rgb, image_size))


# --- augmentation ------------------------------------------------------------------


@dataclass(frozen=True)
class Augment:
    """Which NumPy augmentations to apply to a batch of (n, h, w, c) images."""

    flip: bool = True
    shift: int = 2  # pad by this many pixels, then crop back at a random offset
    erase_prob: float = 0.0  # probability of erasing one random rectangle per image

    def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return an augmented copy; the input is never modified."""
        out = np.array(images, copy=True)
        if self.flip:
            out = random_flip(out, rng)
        if self.shift:
            out = random_shift(out, self.shift, rng)
        if self.erase_prob > 0:
            out = random_erase(out, self.erase_prob, rng)
        return out


AUGMENTATIONS = ("flip", "shift", "erase")


def parse_augment(spec: str) -> Augment | None:
    """Parse `AUGMENT`: "none", or a "+"-joined subset of flip, shift and erase."""
    parts = [p.strip() for p in spec.lower().split("+") if p.strip()]
    if parts in ([], ["none"]):
        return None
    unknown = [p for p in parts if p not in AUGMENTATIONS]
    if unknown:
        raise ValueError(
            f"AUGMENT={spec!r}: unknown augmentation {unknown[0]!r}; use 'none' or a '+'-joined "
            f"subset of {', '.join(AUGMENTATIONS)} (e.g. 'flip+shift')"
        )
    return Augment(
        flip="flip" in parts,
        shift=2 if "shift" in parts else 0,
        erase_prob=0.5 if "erase" in parts else 0.0,
    )


def random_flip(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mirror about half of the images left-right."""
    flip = rng.random(len(images)) < 0.5
    out = images.copy()
    out[flip] = out[flip][:, :, ::-1]
    return out


def random_shift(images: np.ndarray, pad: int, rng: np.random.Generator) -> np.ndarray:
    """Pad with the border value of zero-ink (the minimum) and crop at random offsets."""
    n, h, w = images.shape[:3]
    fill = images.min()
    padded = np.pad(
        images,
        [(0, 0), (pad, pad), (pad, pad)] + [(0, 0)] * (images.ndim - 3),
        constant_values=fill,
    )
    dy = rng.integers(0, 2 * pad + 1, n)
    dx = rng.integers(0, 2 * pad + 1, n)
    rows = dy[:, None] + np.arange(h)[None, :]
    cols = dx[:, None] + np.arange(w)[None, :]
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def random_erase(
    images: np.ndarray, prob: float, rng: np.random.Generator, max_frac: float = 0.4
) -> np.ndarray:
    """Random erasing: blank one rectangle (up to `max_frac` of each side) per chosen image."""
    n, h, w = images.shape[:3]
    chosen = rng.random(n) < prob
    eh = rng.integers(1, max(2, int(h * max_frac)) + 1, n)
    ew = rng.integers(1, max(2, int(w * max_frac)) + 1, n)
    y0 = rng.integers(0, h - eh + 1)
    x0 = rng.integers(0, w - ew + 1)
    ys, xs = np.arange(h)[None, :], np.arange(w)[None, :]
    in_rows = (ys >= y0[:, None]) & (ys < (y0 + eh)[:, None])
    in_cols = (xs >= x0[:, None]) & (xs < (x0 + ew)[:, None])
    mask = in_rows[:, :, None] & in_cols[:, None, :] & chosen[:, None, None]
    out = images.copy()
    out[mask] = images.min()
    return out


def make_batches(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    seed: int,
    augment: Augment | None = None,
    workers: int = 1,
):
    """A shuffled, optionally augmented `keras.utils.PyDataset` over NumPy arrays.

    `workers` > 1 prepares batches in that many threads (NumPy releases the GIL).

    The order and augmentation of epoch `e` depend only on `(seed, e)`, so a resumed run
    sees exactly the batches the killed run would have seen.
    """
    import keras

    class _Batches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__(workers=workers, use_multiprocessing=False)
            self.epoch = 0
            self._order = self._permutation(0)

        def _permutation(self, epoch: int) -> np.ndarray:
            return np.random.default_rng([seed, epoch]).permutation(len(x))

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch
            self._order = self._permutation(epoch)

        def __len__(self) -> int:
            return -(-len(x) // batch_size)

        def __getitem__(self, i: int):
            idx = self._order[i * batch_size : (i + 1) * batch_size]
            xb = x[idx]
            if augment is not None:
                xb = augment(xb, np.random.default_rng([seed, self.epoch, i]))
            return xb, y[idx]

        def on_epoch_end(self) -> None:
            self.set_epoch(self.epoch + 1)

    return _Batches()


# --- split and per-model inputs ----------------------------------------------------

SPLIT_FILE = "split.npz"


def save_split(
    run_dir: str | os.PathLike[str], split: dict[str, np.ndarray], standardizer: Standardizer
) -> Path:
    """Write the train/validation/test indices and the standardisation statistics."""
    path = Path(run_dir) / SPLIT_FILE
    np.savez(path, **split, mean=standardizer.mean, std=standardizer.std)
    return path


def load_split(run_dir: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], Standardizer]:
    """Read what `02_preprocessing` wrote; say so clearly when it has not run."""
    path = Path(run_dir) / SPLIT_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: run notebooks/02_preprocessing.ipynb for this run folder first"
        )
    with np.load(path) as npz:
        split = {k: npz[k] for k in ("train", "val", "test")}
        std = Standardizer(float(npz["mean"]), float(npz["std"]))
    return split, std


def model_inputs(
    model: str, ds, split: dict[str, np.ndarray], standardizer: Standardizer, image_size: int = 32
) -> dict[str, np.ndarray]:
    """Arrays for `model`: standardised 28x28 (mlp), with a channel (cnn), or ResNet50 inputs."""
    raw = {
        "train": ds.x_train[split["train"]],
        "val": ds.x_train[split["val"]],
        "test": ds.x_test[split["test"]],
    }
    out: dict[str, np.ndarray] = {}
    for part, images in raw.items():
        if model == "resnet50":
            out[f"x_{part}"] = resnet_inputs(images, image_size)
        elif model == "cnn":
            out[f"x_{part}"] = standardizer(images)[..., None]
        else:
            out[f"x_{part}"] = standardizer(images)
    out["y_train"] = ds.y_train[split["train"]]
    out["y_val"] = ds.y_train[split["val"]]
    out["y_test"] = ds.y_test[split["test"]]
    return out
