"""fmnist_lib.augment and layers.RandomAugment: one spelling, the same transforms twice.

Each check runs on both implementations: NumPy on the host and the Keras layer inside the
model. Known answers are planted: every output must be one of the exact flips and shifts of
its input, and erased pixels must form one rectangle of the declared size.
"""

from __future__ import annotations

import numpy as np
import pytest

from fmnist_lib import augment, layers


def numpy_impl(images, spec, seed):
    return spec(images, np.random.default_rng(seed))


def layer_impl(images, spec, seed):
    return layers.augment_images(images, spec, seed)


IMPLEMENTATIONS = pytest.mark.parametrize("apply", [numpy_impl, layer_impl], ids=["numpy", "layer"])


def images(n: int = 300, seed: int = 0) -> np.ndarray:
    """Random images whose only 0 is one pixel of image 0, so that a blanked pixel (0) is
    always visible elsewhere, and NumPy's fill (the batch minimum) is 0, the background."""
    x = np.random.default_rng(seed).integers(1, 256, (n + 1, 28, 28)).astype(np.float32)
    x[0, 0, 0] = 0
    return x


def candidates(image: np.ndarray, pad: int) -> list[tuple[bool, int, int, np.ndarray]]:
    out = []
    for flip in (False, True):
        src = image[:, ::-1] if flip else image
        padded = np.pad(src, pad)
        for dy in range(2 * pad + 1):
            for dx in range(2 * pad + 1):
                out.append((flip, dy, dx, padded[dy : dy + 28, dx : dx + 28]))
    return out


def test_spelling():
    assert augment.parse_augment("none") is None and augment.parse_augment("") is None
    assert augment.parse_augment("flip+shift") == augment.Augment(True, 2, 0.0, 0)
    assert augment.parse_augment("shift:4+cutout") == augment.Augment(False, 4, 0.0, 12)
    assert augment.parse_augment("erase+cutout:8") == augment.Augment(False, 0, 0.5, 8)
    assert augment.parse_augment("shift:28+cutout:28") == augment.Augment(False, 28, 0.0, 28)
    for bad in ("flip+rotate", "shift:0", "shift:x", "flip:2", "cutout:-3", "shift:٣"):
        with pytest.raises(ValueError, match="AUGMENT="):
            augment.parse_augment(bad)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("FLIP", "unknown augmentation 'FLIP'.*in lower case"),
        ("Shift:4", "unknown augmentation 'Shift'"),
        ("flip+", r"an empty part \(a '\+' with nothing beside it\)"),
        ("+flip", "an empty part"),
        ("flip++shift", "an empty part"),
        ("flip+flip", "'flip' is given twice"),
        ("shift:2+shift:4", "'shift' is given twice"),
        ("shift:100000", "a whole number of pixels from 1 to 28"),
        ("cutout:29", "a whole number of pixels from 1 to 28"),
    ],
)
def test_spellings_that_were_accepted_are_refused(spec, message):
    """Issue 23: each of these was read as something (upper case folded, empty parts and
    repeats dropped, a 100,000-pixel pad allocated)."""
    with pytest.raises(ValueError, match=message):
        augment.parse_augment(spec)


@IMPLEMENTATIONS
def test_flip_and_shift_are_exact_and_cover_every_offset(apply):
    x = images(200)
    out = apply(x, augment.parse_augment("flip+shift:2"), seed=3)
    found = []
    for o, i in zip(out[1:], x[1:], strict=True):
        match = [(f, dy, dx) for f, dy, dx, c in candidates(i, 2) if np.array_equal(o, c)]
        assert match, "an output is not an exact flip and shift of its input"
        found.append(match[0])
    flips = sum(f for f, _, _ in found)
    assert 70 < flips < 130  # about half mirrored
    assert {dy for _, dy, _ in found} == set(range(5)) == {dx for _, _, dx in found}


@IMPLEMENTATIONS
def test_cutout_blanks_one_clipped_square_in_every_image(apply):
    x = images()
    out = apply(x, augment.parse_augment("cutout:12"), seed=4)
    areas = []
    for o, i in zip(out[1:], x[1:], strict=True):
        rows, cols = np.nonzero(o != i)
        assert len(rows), "cutout applies to every image"
        assert (o[rows, cols] == 0).all()
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert h <= 12 and w <= 12 and len(rows) == h * w  # one solid rectangle
        areas.append(len(rows))
    # centred on a uniform pixel and clipped: the expected area is about 105 of 144
    assert 90 < np.mean(areas) < 120 and max(areas) == 144


@IMPLEMENTATIONS
def test_erase_blanks_a_rectangle_in_about_half(apply):
    x = images()
    out = apply(x, augment.parse_augment("erase"), seed=5)
    changed = 0
    for o, i in zip(out[1:], x[1:], strict=True):
        rows, cols = np.nonzero(o != i)
        if len(rows):
            changed += 1
            h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
            assert h <= 11 and w <= 11 and len(rows) == h * w and (o[rows, cols] == 0).all()
    assert 110 < changed < 190


def test_layer_is_identity_at_inference_and_advances_its_stream():
    import keras

    layer = layers.RandomAugment.from_spec(augment.parse_augment("flip+shift:4+cutout"), seed=7)
    x = images(16)[..., None]
    assert np.array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    first = keras.ops.convert_to_numpy(layer(x, training=True))
    second = keras.ops.convert_to_numpy(layer(x, training=True))
    assert not np.array_equal(first, second)  # each step draws new numbers
    again = layers.RandomAugment.from_spec(augment.parse_augment("flip+shift:4+cutout"), seed=7)
    assert np.array_equal(keras.ops.convert_to_numpy(again(x, training=True)), first)
