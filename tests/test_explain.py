"""Occlusion sensitivity: a planted model that reads only one block must be seen reading it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from fmnist_lib import explain, plots

BLOCK = 7


def block_model(row: int, col: int):
    """Probabilities of two classes that depend only on the 7x7 block at (row, col): the
    brighter the block, the surer of class 1."""

    def predict(images: np.ndarray) -> np.ndarray:
        block = images[:, row : row + BLOCK, col : col + BLOCK].astype(float).mean(axis=(1, 2))
        p1 = 1 / (1 + np.exp(-(block - 60) / 20))
        return np.stack([1 - p1, p1], axis=1)

    return predict


def bright_images(n: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(150, 256, size=(n, 28, 28), dtype=np.uint8)


def block_share(maps: np.ndarray, row: int, col: int) -> np.ndarray:
    inside = np.zeros(maps.shape[1:], dtype=bool)
    inside[row : row + BLOCK, col : col + BLOCK] = True
    return explain.share_inside(maps, np.broadcast_to(inside, maps.shape))


@pytest.mark.parametrize("row, col", [(0, 0), (21, 14)])
def test_the_map_lies_on_the_block_the_model_reads_and_moves_with_it(row, col):
    images = bright_images()
    classes = np.ones(len(images), dtype=int)
    # One-pixel patches: exactly the block's pixels matter.
    exact = explain.occlusion_map(block_model(row, col), images, classes, patch=1, stride=1)
    assert np.all(block_share(exact, row, col) == 1.0)
    assert np.all(exact[:, row : row + BLOCK, col : col + BLOCK] > 0)
    # The default 4x4 patches blur the edge of the block, but nearly all the mass stays on it.
    maps = explain.occlusion_map(block_model(row, col), images, classes)
    assert maps.shape == images.shape and maps.dtype == np.float32
    assert np.all(block_share(maps, row, col) > 0.75)
    peak = np.unravel_index(maps[0].argmax(), maps[0].shape)
    assert row <= peak[0] < row + BLOCK and col <= peak[1] < col + BLOCK
    # The other class's probability rises where the block is blanked: the map is its negative.
    other = explain.occlusion_map(block_model(row, col), images, 1 - classes)
    np.testing.assert_allclose(other, -maps, atol=1e-6)


def test_a_keras_model_reading_one_block_is_explained_through_predict():
    """The same planted answer through a real Keras model (whatever backend runs the tests)."""
    import keras

    weights = np.zeros((28 * 28, 2), dtype="float32")
    inside = np.zeros((28, 28), dtype=bool)
    inside[:BLOCK, :BLOCK] = True
    weights[inside.ravel(), 1] = 0.2
    model = keras.Sequential(
        [keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")]
    )
    model.layers[-1].set_weights([weights, np.array([2.0, 0.0], dtype="float32")])
    calls = []

    def predict(images):
        calls.append(len(images))
        return model.predict(images.astype("float32") / 255, verbose=0)

    maps = explain.occlusion_map(predict, bright_images(2), np.ones(2, dtype=int))
    assert np.all(block_share(maps, 0, 0) > 0.75)
    assert calls == [2 + 2 * 13 * 13]  # originals and every occluded copy in one call


def test_patch_positions_cover_every_pixel():
    assert list(explain.patch_corners(28, 4, 2)) == list(range(0, 25, 2))
    assert list(explain.patch_corners(28, 5, 4)) == [0, 4, 8, 12, 16, 20, 23]  # last flush
    assert list(explain.patch_corners(28, 28, 3)) == [0]


@pytest.mark.parametrize(
    "kwargs, shape, message",
    [
        ({"patch": 29}, (2, 28, 28), "patch=29: must be an integer from 1 to the image side, 28"),
        ({"patch": 0}, (2, 28, 28), "patch=0"),
        ({"stride": 0}, (2, 28, 28), "stride=0: must be an integer of at least 1"),
        ({"fill": 256}, (2, 28, 28), "fill=256"),
        ({}, (28, 28), r"images: expected .*\(n, height, width\).* got shape \(28, 28\)"),
        ({}, (2, 28, 28, 1), r"got shape \(2, 28, 28, 1\)"),
        ({}, (0, 28, 28), r"n >= 1, got shape \(0, 28, 28\)"),
    ],
)
def test_refusals(kwargs, shape, message):
    images = np.zeros(shape, dtype=np.uint8)
    with pytest.raises(ValueError, match=message):
        explain.occlusion_map(block_model(0, 0), images, np.zeros(shape[0], dtype=int), **kwargs)


def test_refusals_of_classes_pixels_and_predictions():
    images = bright_images(2)
    with pytest.raises(ValueError, match="classes: expected one integer class per image"):
        explain.occlusion_map(block_model(0, 0), images, np.array([1]))
    with pytest.raises(ValueError, match="images: expected uint8"):
        explain.occlusion_map(block_model(0, 0), images.astype(float), np.ones(2, dtype=int))
    with pytest.raises(ValueError, match=r"classes: values 0\.\.2 do not index"):
        explain.occlusion_map(block_model(0, 0), images, np.array([0, 2]))
    with pytest.raises(ValueError, match="predict_fn: expected probabilities shaped"):
        explain.occlusion_map(lambda x: np.ones(len(x)), images, np.ones(2, dtype=int))


def test_examples_are_seeded_and_split_into_correct_and_wrong():
    y_true = np.arange(100) % 10
    y_pred = y_true.copy()
    y_pred[[3, 17, 42, 77]] = 0
    correct, wrong = explain.choose_examples(y_true, y_pred, 3, seed=1)
    again = explain.choose_examples(y_true, y_pred, 3, seed=1)
    assert np.array_equal(correct, again[0]) and np.array_equal(wrong, again[1])
    assert np.all(y_true[correct] == y_pred[correct]) and len(correct) == 3
    assert set(wrong) <= {3, 17, 42, 77} and len(wrong) == 3 and list(wrong) == sorted(wrong)
    _, few = explain.choose_examples(y_true, y_pred, 10, seed=1)
    assert sorted(few) == [3, 17, 42, 77]  # all there are
    with pytest.raises(ValueError, match="per_kind=0"):
        explain.choose_examples(y_true, y_pred, 0, seed=1)


def test_record_and_finding():
    images = np.zeros((2, 28, 28), dtype=np.uint8)
    images[:, :14] = 200  # the garment: the top half
    maps = np.zeros((2, 28, 28), dtype=np.float32)
    maps[0, :14] = 1.0  # all on the garment
    maps[1, :7] = 1.0
    maps[1, 14:21] = 1.0  # half on it
    record = explain.occlusion_record(
        "cnn",
        maps,
        images,
        np.array([5, 9]),
        np.array([105, 109]),
        np.array([0, 1]),
        np.array([0, 2]),
        {"patch": 4, "stride": 2},
    )
    assert record.share_on_garment == [1.0, 0.5] and record.garment_area == [0.5, 0.5]
    assert record.correct == [True, False] and record.predicted == ["T-shirt/top", "Pullover"]
    assert record.finding() == (
        "On 2 test images, 75% of the drop in cnn's probability of its predicted class comes "
        "from patches on the garment, which covers 50% of the image."
    )
    assert explain.OcclusionRecord.from_dict(record.to_dict()) == record
    with pytest.raises(ValueError, match="version"):
        explain.OcclusionRecord.from_dict({**record.to_dict(), "version": 99})
    flat = explain.occlusion_record(
        "cnn",
        np.zeros((1, 28, 28)),
        images[:1],
        np.array([0]),
        np.array([0]),
        np.array([0]),
        np.array([0]),
        {"patch": 4, "stride": 2},
    )
    assert flat.share_on_garment == [None] and flat.mean_share() is None
    assert "no patch lowered" in flat.finding()


def test_occlusion_panels_text_is_at_least_14_pt_on_a_slide():
    images = bright_images(4)
    maps = explain.occlusion_map(block_model(0, 0), images, np.ones(4, dtype=int))
    with plots.slide_style():
        fig = plots.occlusion_panels(
            images,
            maps,
            ["Shirt", "Coat", "Bag", "Dress"],
            ["Shirt", "Coat", "Bag", "Sandal"],
            np.array([0.9, 0.8, 0.99, 0.6]),
        )
    texts = [t for t in fig.findobj(plots.plt.Text) if t.get_text()]
    assert {t.get_text() for t in texts} >= {"correct predictions", "mistakes", "→ Sandal\n60%"}
    assert min(t.get_fontsize() for t in texts) >= 14
    assert fig.get_size_inches()[0] == pytest.approx(plots.SLIDE_WIDTH)
    plots.plt.close(fig)


def test_overlay_keeps_the_garment_light_on_black_and_reddens_where_the_map_is_high():
    image = np.zeros((28, 28), dtype=np.uint8)
    image[10:20, 10:20] = 255
    heat = np.zeros((28, 28))
    heat[12, 12] = 1.0
    rgb = plots.occlusion_overlay(image, heat)
    assert rgb.shape == (28, 28, 3) and rgb.min() >= 0 and rgb.max() <= 1
    assert np.all(rgb[0, 0] == 0) and np.all(rgb[15, 15] == 1)  # black ground, white garment
    assert rgb[12, 12, 0] > 0.9 and rgb[12, 12, 1] < 0.4  # red at the peak


def test_explain_imports_no_keras_backend():
    code = (
        "import sys, fmnist_lib.explain; "
        "print(sorted({'keras', 'tensorflow', 'jax'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_each_pixel_gets_the_mean_drop_of_the_patches_covering_it():
    """A model that reads the mean brightness: every 4x4 patch blanked on a white image costs
    exactly 16/784 of the probability, so the map is that value at every pixel (edges too)."""

    def brightness(images):
        p1 = images.reshape(len(images), -1).mean(axis=1) / 255
        return np.stack([1 - p1, p1], axis=1)

    white = np.full((1, 28, 28), 255, dtype=np.uint8)
    maps = explain.occlusion_map(brightness, white, np.array([1]), patch=4, stride=3)
    np.testing.assert_allclose(maps, 16 / 784, rtol=1e-5)
