"""fmnist_lib.preprocess: scaling, ResNet50 inputs, NumPy augmentation, seeded batches."""

from __future__ import annotations

import numpy as np
import pytest

from fmnist_lib import preprocess


def test_standardizer_zero_mean_unit_std():
    x = np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8)
    s = preprocess.Standardizer.fit(x)
    z = s(x)
    assert z.dtype == np.float32 and abs(z.mean()) < 1e-4 and abs(z.std() - 1) < 1e-3
    assert preprocess.scale(np.array([0, 255], np.uint8)).tolist() == [0.0, 1.0]


def test_resnet_inputs_shape_and_caffe_preprocessing():
    x = np.full((2, 28, 28), 255, np.uint8)
    out = preprocess.resnet_inputs(x, 32)
    assert out.shape == (2, 32, 32, 3)
    # 'caffe' mode: BGR order minus the ImageNet channel means (103.939, 116.779, 123.68)
    assert np.allclose(out[0, 5, 5], [255 - 103.939, 255 - 116.779, 255 - 123.68], atol=1e-3)


def test_resize_keeps_constant_images_constant():
    x = np.full((3, 28, 28, 3), 7.0, np.float32)
    assert np.allclose(preprocess.resize(x, 48), 7.0)


@pytest.mark.parametrize("size", [0, 16, 31])
def test_image_size_below_32_is_refused(size):
    with pytest.raises(ValueError, match=f"IMAGE_SIZE={size}.*at least 32"):
        preprocess.check_image_size(size)


def test_flip_mirrors_about_half():
    x = np.arange(2 * 200 * 28 * 28, dtype=np.float32).reshape(400, 28, 28) % 97
    out = preprocess.random_flip(x, np.random.default_rng(0))
    flipped = np.array([np.array_equal(o, i[:, ::-1]) for o, i in zip(out, x, strict=True)])
    kept = np.array([np.array_equal(o, i) for o, i in zip(out, x, strict=True)])
    assert (flipped | kept).all() and 150 < flipped.sum() < 250


def test_shift_moves_content_without_changing_mass():
    x = np.zeros((64, 28, 28), np.float32)
    x[:, 10:18, 10:18] = 1.0
    out = preprocess.random_shift(x, 2, np.random.default_rng(1))
    assert out.shape == x.shape and np.allclose(out.sum(axis=(1, 2)), 64.0)
    assert not np.array_equal(out, x)


def test_random_erase_blanks_only_chosen_images():
    x = np.ones((100, 28, 28), np.float32)
    x[:, 0, 0] = 0.0  # the fill value is the minimum
    out = preprocess.random_erase(x, 0.5, np.random.default_rng(2))
    erased = (out != x).any(axis=(1, 2))
    assert 30 < erased.sum() < 70
    assert np.array_equal(preprocess.random_erase(x, 0.0, np.random.default_rng(2)), x)


def test_augment_is_seeded_and_pure():
    x = np.random.default_rng(3).random((16, 28, 28)).astype(np.float32)
    before = x.copy()
    aug = preprocess.Augment(flip=True, shift=2, erase_prob=0.5)
    a = aug(x, np.random.default_rng(9))
    b = aug(x, np.random.default_rng(9))
    assert np.array_equal(a, b) and np.array_equal(x, before) and not np.array_equal(a, x)


def test_batches_depend_only_on_seed_and_epoch():
    x = np.arange(100, dtype=np.float32)[:, None]
    y = np.arange(100)
    first = preprocess.make_batches(x, y, 32, seed=5)
    again = preprocess.make_batches(x, y, 32, seed=5)
    again.set_epoch(0)
    assert len(first) == 4
    assert np.array_equal(first[0][1], again[0][1])
    first.on_epoch_end()
    resumed = preprocess.make_batches(x, y, 32, seed=5)
    resumed.set_epoch(1)
    assert np.array_equal(first[1][1], resumed[1][1])
    assert sorted(np.concatenate([first[i][1] for i in range(4)]).tolist()) == list(range(100))
