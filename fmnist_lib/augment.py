"""Augmentation, one spelling (`AUGMENT`) and two implementations of the same transforms.

- `Augment.__call__`: NumPy on the host, per batch, seeded by `(seed, epoch, step)` through
  `preprocess.make_batches`. The dense and convolutional baselines use it.
- `fmnist_lib.layers.RandomAugment`: the same transforms as a Keras layer inside the model,
  so they run inside the compiled train step on the accelerator (ResNet50).

Both work on raw pixel values where 0 is the black background, fill with the minimum
(0 for raw pixels) and draw the same distributions:

- `flip`: mirror left-right with probability 1/2;
- `shift` / `shift:N`: pad by N pixels (default 2), crop back at a uniform offset;
- `erase`: with probability 1/2 blank one rectangle of 1..40% of each side;
- `cutout` / `cutout:N`: always blank an N x N square (default 12) centred on a uniform
  pixel, clipped at the border (DeVries and Taylor, 2017).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AUGMENTATIONS = ("flip", "shift", "erase", "cutout")
DEFAULT_SHIFT = 2
DEFAULT_CUTOUT = 12
ERASE_PROB = 0.5
ERASE_MAX_FRAC = 0.4
MAX_SIZE = 28  # shift and cutout sizes: at most the images' side


@dataclass(frozen=True)
class Augment:
    """Which augmentations to apply to a batch of (n, h, w[, c]) images."""

    flip: bool = True
    shift: int = DEFAULT_SHIFT  # pad by this many pixels, then crop back at a random offset
    erase_prob: float = 0.0  # probability of erasing one random rectangle per image
    cutout: int = 0  # side of the square blanked in every image; 0 disables

    def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return an augmented copy (NumPy, on the host); the input is never modified."""
        out = np.array(images, copy=True)
        if self.flip:
            out = random_flip(out, rng)
        if self.shift:
            out = random_shift(out, self.shift, rng)
        if self.erase_prob > 0:
            out = random_erase(out, self.erase_prob, rng)
        if self.cutout:
            out = random_cutout(out, self.cutout, rng)
        return out


def parse_augment(spec: str) -> Augment | None:
    """Parse `AUGMENT`: "none" (or ""), or a "+"-joined subset of flip, shift[:N], erase,
    cutout[:N], lower case, each at most once, sizes from 1 to `MAX_SIZE` pixels."""
    usage = (
        f"use 'none' or a '+'-joined subset of {', '.join(AUGMENTATIONS)}, each once, in lower "
        "case (e.g. 'flip+shift:4+cutout:12')"
    )
    if spec.strip() in ("none", ""):
        return None
    parts = [p.strip() for p in spec.split("+")]
    if not all(parts):
        raise ValueError(f"AUGMENT={spec!r}: an empty part (a '+' with nothing beside it); {usage}")
    found: dict[str, int] = {}
    for part in parts:
        name, _, size = part.partition(":")
        if name not in AUGMENTATIONS:
            raise ValueError(f"AUGMENT={spec!r}: unknown augmentation {name!r}; {usage}")
        if name in found:
            raise ValueError(f"AUGMENT={spec!r}: {name!r} is given twice; {usage}")
        if size and (
            name not in ("shift", "cutout")
            or not size.isascii()
            or not size.isdigit()
            or not 1 <= int(size) <= MAX_SIZE
        ):
            raise ValueError(
                f"AUGMENT={spec!r}: {part!r} is not valid; only shift and cutout take a size, "
                f"a whole number of pixels from 1 to {MAX_SIZE} (e.g. 'shift:4')"
            )
        default = {"shift": DEFAULT_SHIFT, "cutout": DEFAULT_CUTOUT}.get(name, 1)
        found[name] = int(size) if size else default
    return Augment(
        flip="flip" in found,
        shift=found.get("shift", 0),
        erase_prob=ERASE_PROB if "erase" in found else 0.0,
        cutout=found.get("cutout", 0),
    )


# --- NumPy, on the host ------------------------------------------------------------


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


def _blank(images: np.ndarray, y0, y1, x0, x1) -> np.ndarray:
    """Set rows [y0, y1) x columns [x0, x1) of each image to the minimum."""
    h, w = images.shape[1:3]
    ys, xs = np.arange(h)[None, :], np.arange(w)[None, :]
    in_rows = (ys >= y0[:, None]) & (ys < y1[:, None])
    in_cols = (xs >= x0[:, None]) & (xs < x1[:, None])
    mask = in_rows[:, :, None] & in_cols[:, None, :]
    out = images.copy()
    out[mask] = images.min()
    return out


def random_erase(
    images: np.ndarray, prob: float, rng: np.random.Generator, max_frac: float = ERASE_MAX_FRAC
) -> np.ndarray:
    """Random erasing: blank one rectangle (up to `max_frac` of each side) per chosen image."""
    n, h, w = images.shape[:3]
    chosen = rng.random(n) < prob
    eh = rng.integers(1, max(2, int(h * max_frac)) + 1, n)
    ew = rng.integers(1, max(2, int(w * max_frac)) + 1, n)
    y0 = rng.integers(0, h - eh + 1)
    x0 = rng.integers(0, w - ew + 1)
    eh, ew = np.where(chosen, eh, 0), np.where(chosen, ew, 0)
    return _blank(images, y0, y0 + eh, x0, x0 + ew)


def random_cutout(images: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Cutout: blank a `size` x `size` square centred on a uniform pixel, clipped at the edge."""
    n, h, w = images.shape[:3]
    cy = rng.integers(0, h, n) - size // 2
    cx = rng.integers(0, w, n) - size // 2
    return _blank(images, cy, cy + size, cx, cx + size)
