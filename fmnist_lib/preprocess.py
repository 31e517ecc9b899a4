"""Preprocessing in NumPy, so every Keras backend runs it.

Scaling and standardising for the dense and convolutional baselines; seeded batches
through a `PyDataset`, augmented on the host (`fmnist_lib.augment`) or held on the device.
ResNet50 takes raw pixels: its resizing and normalisation are layers inside the model
(`fmnist_lib.layers`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmnist_lib.augment import Augment


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


def make_batches(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    seed: int,
    augment: Augment | None = None,
    workers: int = 1,
    on_device: bool = False,
):
    """A shuffled, optionally augmented `keras.utils.PyDataset` over NumPy arrays.

    The order and augmentation of epoch `e` depend only on `(seed, e)`, so a resumed run
    sees exactly the batches the killed run would have seen. The epoch is set from outside,
    by `set_epoch` (`train.fit_stage` calls it from a callback at each epoch's start), not
    counted here: Keras also signals an epoch end when `fit` starts. Train with
    `fit(shuffle=False)`: Keras would otherwise reorder the batches with Python's global
    random state.

    Args:
        augment: NumPy augmentation applied on the host to each batch.
        workers: threads preparing batches (NumPy releases the GIL).
        on_device: hold `x` and `y` as backend tensors (on the accelerator under JAX) and
            gather each batch there, so only the indices cross from the host. Every batch
            is then full: the last `len(x) % batch_size` images of each epoch's permutation
            wait for a later epoch, and the compiled step sees a single shape.
    """
    import keras

    if on_device and augment is not None:
        raise ValueError("on_device batches are augmented inside the model, not on the host")
    held_x = keras.ops.convert_to_tensor(x) if on_device else x
    held_y = keras.ops.convert_to_tensor(y) if on_device else y
    steps = len(x) // batch_size if on_device and len(x) >= batch_size else -(-len(x) // batch_size)

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
            return steps

        def __getitem__(self, i: int):
            idx = self._order[i * batch_size : (i + 1) * batch_size]
            if on_device:
                return keras.ops.take(held_x, idx, axis=0), keras.ops.take(held_y, idx, axis=0)
            xb = x[idx]
            if augment is not None:
                xb = augment(xb, np.random.default_rng([seed, self.epoch, i]))
            return xb, y[idx]

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


def prepare(model: str, images: np.ndarray, standardizer: Standardizer) -> np.ndarray:
    """uint8 images (n, 28, 28) as `model` takes them: standardised (mlp), with a channel
    (cnn), or raw uint8 pixels with a channel (resnet50)."""
    if model == "resnet50":
        return np.asarray(images, dtype=np.uint8)[..., None]
    if model == "cnn":
        return standardizer(images)[..., None]
    return standardizer(images)


def model_inputs(
    model: str, ds, split: dict[str, np.ndarray], standardizer: Standardizer
) -> dict[str, np.ndarray]:
    """The train, validation and test images prepared for `model` (`prepare`; resnet50
    resizes and normalises inside the model), and their labels."""
    raw = {
        "train": ds.x_train[split["train"]],
        "val": ds.x_train[split["val"]],
        "test": ds.x_test[split["test"]],
    }
    out = {f"x_{part}": prepare(model, images, standardizer) for part, images in raw.items()}
    out["y_train"] = ds.y_train[split["train"]]
    out["y_val"] = ds.y_train[split["val"]]
    out["y_test"] = ds.y_test[split["test"]]
    return out
