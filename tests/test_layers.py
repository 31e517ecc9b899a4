"""fmnist_lib.layers.ResNetInput: resize, three channels and each normalisation."""

from __future__ import annotations

import numpy as np

from fmnist_lib import layers, preprocess


def test_caffe_input_matches_preprocess_input_on_resized_rgb():
    import keras
    from keras.applications import resnet50

    x = np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    out = layers.resnet_inputs(x, 32)
    assert out.shape == (4, 32, 32, 3)
    rgb = np.repeat(x[..., None].astype(np.float32), 3, axis=-1)
    resized = keras.ops.convert_to_numpy(keras.ops.image.resize(rgb, (32, 32)))
    np.testing.assert_allclose(out, resnet50.preprocess_input(resized), atol=1e-3)
    constant = layers.resnet_inputs(
        np.full((2, 28, 28), 7, np.uint8), 48, preprocess.Standardizer(0, 1)
    )
    np.testing.assert_allclose(constant, 7 / 255, rtol=1e-5)  # a constant image stays constant
    full = layers.resnet_inputs(np.full((1, 28, 28), 255, np.uint8), 32)
    # 'caffe' mode: BGR order minus the ImageNet channel means (103.939, 116.779, 123.68)
    assert np.allclose(full[0, 5, 5], [255 - 103.939, 255 - 116.779, 255 - 123.68], atol=1e-3)


def test_standardised_input_uses_the_training_statistics_at_native_size():
    x = np.random.default_rng(1).integers(0, 256, (50, 28, 28), dtype=np.uint8)
    std = preprocess.Standardizer.fit(x)
    out = layers.resnet_inputs(x, 28, std)
    assert out.shape == (50, 28, 28, 3)
    np.testing.assert_allclose(out[..., 1], std(x), atol=1e-5)  # no resize at 28
