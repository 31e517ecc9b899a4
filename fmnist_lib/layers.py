"""Keras layers that put the input pipeline inside the ResNet50 model.

The model takes raw `(n, 28, 28, 1)` uint8 pixels. `RandomAugment` (training only) and
`ResNetInput` (resize, three channels, normalisation) then run inside the compiled step, so on
an accelerator the images travel as 784 bytes each and nothing on the host has to keep up. A
saved `model.keras` therefore classifies raw Fashion-MNIST images as they come.

Both layers are registered with Keras, so `keras.saving.load_model(..., safe_mode=True)`
rebuilds them once this module is imported (`fmnist_lib.train.load_checkpoint` does).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from fmnist_lib.augment import DEFAULT_SHIFT, ERASE_MAX_FRAC, Augment

NORMALIZATIONS = ("caffe", "standardize")


@keras.saving.register_keras_serializable(package="fmnist")
class RandomAugment(keras.layers.Layer):
    """`augment.Augment` as a layer: active in training only, on raw pixels (0 = background).

    Integer pad-and-crop (`take_along_axis`), `where`-based flips and masks, and
    `keras.random` draws from one `SeedGenerator`; no interpolation (`RandomTranslation` and
    friends go through `map_coordinates` on JAX, which made each step take 28 s). The
    generator's state is saved with the model, so a resumed run continues the random stream
    of the run it resumes: step k of epoch e draws the same numbers either way.
    """

    def __init__(
        self,
        flip: bool = True,
        shift: int = DEFAULT_SHIFT,
        erase_prob: float = 0.0,
        cutout: int = 0,
        seed: int = 0,
        **kwargs,
    ) -> None:
        kwargs.setdefault("dtype", "float32")  # pixel values 0..255 stay exact
        super().__init__(**kwargs)
        self.spec = Augment(bool(flip), int(shift), float(erase_prob), int(cutout))
        self.seed = int(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    @classmethod
    def from_spec(cls, spec: Augment, seed: int, name: str = "augment") -> RandomAugment:
        """The layer for a parsed `AUGMENT`."""
        return cls(spec.flip, spec.shift, spec.erase_prob, spec.cutout, seed=seed, name=name)

    def call(self, images, training=None):
        x = ops.cast(images, self.compute_dtype)
        if not training:
            return x
        if self.spec.flip:
            x = self._flip(x)
        if self.spec.shift:
            x = self._shift(x, self.spec.shift)
        if self.spec.erase_prob > 0:
            x = self._erase(x, self.spec.erase_prob)
        if self.spec.cutout:
            x = self._cutout(x, self.spec.cutout)
        return x

    def _uniform(self, n):
        return keras.random.uniform((n,), seed=self.seed_generator)

    def _randint(self, n, low, high):
        return keras.random.randint((n,), low, high, seed=self.seed_generator, dtype="int32")

    def _flip(self, x):
        flip = self._uniform(ops.shape(x)[0]) < 0.5
        return ops.where(flip[:, None, None, None], ops.flip(x, axis=2), x)

    def _shift(self, x, pad: int):
        n, h, w, c = ops.shape(x)
        padded = ops.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
        rows = self._randint(n, 0, 2 * pad + 1)[:, None] + ops.arange(h, dtype="int32")[None, :]
        cols = self._randint(n, 0, 2 * pad + 1)[:, None] + ops.arange(w, dtype="int32")[None, :]
        rows = ops.broadcast_to(rows[:, :, None, None], (n, h, w + 2 * pad, c))
        x = ops.take_along_axis(padded, rows, axis=1)
        return ops.take_along_axis(x, ops.broadcast_to(cols[:, None, :, None], (n, h, w, c)), 2)

    def _blank(self, x, y0, y1, x0, x1):
        """Zero rows [y0, y1) x columns [x0, x1) of each image."""
        h, w = ops.shape(x)[1], ops.shape(x)[2]
        ys = ops.arange(h, dtype="int32")[None, :]
        xs = ops.arange(w, dtype="int32")[None, :]
        in_rows = (ys >= y0[:, None]) & (ys < y1[:, None])
        in_cols = (xs >= x0[:, None]) & (xs < x1[:, None])
        mask = in_rows[:, :, None, None] & in_cols[:, None, :, None]
        return ops.where(mask, ops.zeros_like(x), x)

    def _erase(self, x, prob: float):
        n, h, w = ops.shape(x)[:3]
        chosen = self._uniform(n) < prob
        eh = self._randint(n, 1, max(2, int(h * ERASE_MAX_FRAC)) + 1)
        ew = self._randint(n, 1, max(2, int(w * ERASE_MAX_FRAC)) + 1)
        # A uniform offset in [0, h - eh], as NumPy's integers(0, h - eh + 1).
        y0 = ops.cast(self._uniform(n) * ops.cast(h - eh + 1, "float32"), "int32")
        x0 = ops.cast(self._uniform(n) * ops.cast(w - ew + 1, "float32"), "int32")
        eh, ew = ops.where(chosen, eh, 0), ops.where(chosen, ew, 0)
        return self._blank(x, y0, y0 + eh, x0, x0 + ew)

    def _cutout(self, x, size: int):
        n, h, w = ops.shape(x)[:3]
        cy = self._randint(n, 0, h) - size // 2
        cx = self._randint(n, 0, w) - size // 2
        return self._blank(x, cy, cy + size, cx, cx + size)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        spec = self.spec
        return {
            **super().get_config(),
            "flip": spec.flip,
            "shift": spec.shift,
            "erase_prob": spec.erase_prob,
            "cutout": spec.cutout,
            "seed": self.seed,
        }

    # The SeedGenerator's state is not among a layer's saved variables by default.
    def save_own_variables(self, store) -> None:
        store["seed_state"] = self.seed_generator.state

    def load_own_variables(self, store) -> None:
        self.seed_generator.state.assign(store["seed_state"])


@keras.saving.register_keras_serializable(package="fmnist")
class ResNetInput(keras.layers.Layer):
    """Raw pixels `(n, h, w, 1)` -> ResNet50 input `(n, size, size, 3)`.

    Bilinear resize (skipped at the images' own size), the gray channel repeated three
    times, then `caffe` (`keras.applications.resnet50.preprocess_input`, what ImageNet
    weights expect) or `standardize` (`(x / 255 - mean) / std`, for random initialisation).
    """

    def __init__(
        self,
        image_size: int,
        normalize: str = "caffe",
        mean: float = 0.0,
        std: float = 1.0,
        **kwargs,
    ) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize={normalize!r}: use one of {', '.join(NORMALIZATIONS)}")
        self.image_size = int(image_size)
        self.normalize = normalize
        self.mean = float(mean)
        self.std = float(std)

    def call(self, images):
        x = ops.cast(images, "float32")
        if x.shape[1:3] != (self.image_size, self.image_size):
            x = ops.image.resize(x, (self.image_size, self.image_size), interpolation="bilinear")
        x = ops.repeat(x, 3, axis=-1)
        if self.normalize == "caffe":
            return keras.applications.resnet50.preprocess_input(x)
        return (x / 255.0 - self.mean) / self.std

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.image_size, self.image_size, 3)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "image_size": self.image_size,
            "normalize": self.normalize,
            "mean": self.mean,
            "std": self.std,
        }


def augment_images(images: np.ndarray, spec: Augment, seed: int) -> np.ndarray:
    """Run `RandomAugment` once in training mode on `(n, h, w)` images (for figures, tests)."""
    layer = RandomAugment.from_spec(spec, seed)
    out = layer(np.asarray(images, dtype=np.float32)[..., None], training=True)
    return ops.convert_to_numpy(out)[..., 0]


def resnet_inputs(images: np.ndarray, image_size: int, standardizer=None) -> np.ndarray:
    """What `ResNetInput` makes of raw `(n, h, w)` images: caffe normalisation, or
    standardisation when the training set's `standardizer` is given (for figures, tests)."""
    if standardizer is None:
        layer = ResNetInput(image_size, "caffe")
    else:
        layer = ResNetInput(image_size, "standardize", standardizer.mean, standardizer.std)
    return ops.convert_to_numpy(layer(np.asarray(images)[..., None]))
