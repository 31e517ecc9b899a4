"""fmnist_lib.preprocess: scaling, seeded batches on the host or held on the device."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from fmnist_lib import augment, preprocess


def test_standardizer_zero_mean_unit_std():
    x = np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8)
    s = preprocess.Standardizer.fit(x)
    z = s(x)
    assert z.dtype == np.float32 and abs(z.mean()) < 1e-4 and abs(z.std() - 1) < 1e-3
    assert preprocess.scale(np.array([0, 255], np.uint8)).tolist() == [0.0, 1.0]


def test_prepare_gives_each_model_its_inputs_and_model_inputs_uses_it():
    x = np.random.default_rng(1).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    s = preprocess.Standardizer(0.3, 0.2)
    mlp, cnn, resnet = (preprocess.prepare(m, x, s) for m in ("mlp", "cnn", "resnet50"))
    np.testing.assert_array_equal(mlp, (x / np.float32(255) - 0.3) / 0.2)
    np.testing.assert_array_equal(cnn, mlp[..., None])
    assert resnet.dtype == np.uint8 and (resnet[..., 0] == x).all()
    ds = SimpleNamespace(x_train=x, y_train=np.arange(4), x_test=x[::-1], y_test=np.arange(4))
    split = {"train": np.array([0, 2]), "val": np.array([1]), "test": np.array([3, 0])}
    inputs = preprocess.model_inputs("cnn", ds, split, s)
    np.testing.assert_array_equal(inputs["x_test"], cnn[[0, 3]])
    assert inputs["y_test"].tolist() == [3, 0]


def test_batches_depend_only_on_seed_and_epoch():
    x = np.arange(100, dtype=np.float32)[:, None]
    y = np.arange(100)
    first = preprocess.make_batches(x, y, 32, seed=5)
    again = preprocess.make_batches(x, y, 32, seed=5)
    again.set_epoch(0)
    assert len(first) == 4
    assert np.array_equal(first[0][1], again[0][1])
    first.set_epoch(1)
    resumed = preprocess.make_batches(x, y, 32, seed=5)
    resumed.set_epoch(1)
    assert np.array_equal(first[1][1], resumed[1][1])
    assert sorted(np.concatenate([first[i][1] for i in range(4)]).tolist()) == list(range(100))


def test_host_augmentation_is_seeded_per_epoch_and_step():
    x = np.random.default_rng(0).integers(0, 256, (64, 28, 28), dtype=np.uint8)
    y = np.arange(64)
    spec = augment.parse_augment("flip+shift:3")
    a = preprocess.make_batches(x, y, 16, seed=1, augment=spec)
    b = preprocess.make_batches(x, y, 16, seed=1, augment=spec)
    assert np.array_equal(a[2][0], b[2][0]) and not np.array_equal(a[2][0], x[a[2][1]])
    b.set_epoch(1)
    assert not np.array_equal(a[2][0], b[2][0])


def test_device_batches_are_full_seeded_and_gathered_from_held_arrays():
    import keras

    x = np.arange(100, dtype=np.uint8)[:, None]
    y = np.arange(100)
    held = preprocess.make_batches(x, y, 32, seed=5, on_device=True)
    host = preprocess.make_batches(x, y, 32, seed=5)
    assert len(held) == 3  # 100 // 32: the remainder waits for a later epoch
    for i in range(3):
        xb, yb = (keras.ops.convert_to_numpy(t) for t in held[i])
        assert xb.shape == (32, 1) and np.array_equal(xb[:, 0], yb)
        assert np.array_equal(yb, host[i][1])  # the same seeded order as the host path
    held.set_epoch(1)
    seen = np.concatenate([keras.ops.convert_to_numpy(held[i][1]) for i in range(3)])
    assert len(set(seen.tolist())) == 96  # a fresh permutation, no repeats
