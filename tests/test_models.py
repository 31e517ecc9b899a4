"""fmnist_lib.models: builders, honest weights resolution offline, bad choices refused."""

from __future__ import annotations

import hashlib

import h5py
import keras
import numpy as np
import pytest

from fmnist_lib import models


def test_mlp_is_flatten_two_hidden_dense_and_softmax():
    m = models.build_mlp()
    kinds = [type(layer).__name__ for layer in m.layers[1:]]
    assert kinds == ["Flatten", "Dense", "Dense", "Dense"]
    assert m.output_shape == (None, 10) and m.layers[-1].activation.__name__ == "softmax"


def test_cnn_output():
    m = models.build_cnn()
    assert m.output_shape == (None, 10)
    assert any(isinstance(layer, keras.layers.Conv2D) for layer in m.layers)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("vgg", "frozen", "auto", 32), "MODEL='vgg' is unknown"),
        (("resnet50", "half", "auto", 32), "FINE_TUNE='half' is unknown"),
        (("resnet50", "frozen", "auto", 28), "IMAGE_SIZE=28.*at least 32"),
        (("resnet50", "frozen", "/no/such.h5", 32), "no such file"),
        (("resnet50", "frozen", "none", 32), "random, frozen features"),
        (("cnn", "frozen", "auto", 32, "flip+rotate"), "unknown augmentation .rotate."),
    ],
)
def test_bad_choices_are_refused(args, message):
    with pytest.raises(models.ModelConfigError, match=message):
        models.validate_choice(*args)


def test_imagenet_offline_fails_with_three_remedies(keras_home):
    with pytest.raises(models.ModelConfigError) as info:
        models.resolve_weights("imagenet", "frozen")
    msg = str(info.value)
    assert models.RESNET_NOTOP_FILE in msg and str(keras_home) in msg
    assert "WEIGHTS=/path/to/that/file" in msg and "WEIGHTS='auto'" in msg


def test_auto_offline_falls_back_to_random_and_unfrozen(keras_home):
    value, choice = models.resolve_weights("auto", "frozen")
    assert value is None and choice.used == "random" and choice.fine_tune == "full"
    assert not choice.is_imagenet and "NOT ImageNet" in choice.banner()


def _write_legacy_h5(model: keras.Model, path) -> None:
    """Write weights in the legacy Keras HDF5 layout that the official ImageNet files use."""
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


@pytest.fixture(scope="module")
def planted_backbone():
    keras.utils.set_random_seed(123)
    return keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3))


@pytest.mark.slow
def test_imagenet_loads_from_keras_cache(keras_home, planted_backbone, monkeypatch):
    """The real cache path: a file the test writes, under Keras's exact name and format."""
    from keras.src.applications import resnet

    cached = keras_home / "models" / models.RESNET_NOTOP_FILE
    cached.parent.mkdir()
    _write_legacy_h5(planted_backbone, cached)
    md5 = hashlib.md5(cached.read_bytes()).hexdigest()
    # Keras checks the cached file against the official hash; ours has its own.
    monkeypatch.setitem(resnet.WEIGHTS_HASHES, "resnet50", ("unused", md5))
    model, backbone, _, choice = models.build_resnet50(32, "imagenet", "frozen")
    assert choice.used == "imagenet" and choice.fine_tune == "frozen"
    assert "ImageNet-pretrained" in choice.banner()
    for a, b in zip(backbone.get_weights(), planted_backbone.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not backbone.trainable and model.get_layer("head").trainable


@pytest.mark.slow
def test_weights_file_path_loads(tmp_path, planted_backbone):
    path = tmp_path / "my_resnet.h5"
    _write_legacy_h5(planted_backbone, path)
    _, backbone, _, choice = models.build_resnet50(32, str(path), "top")
    assert choice.used == str(path.resolve())
    np.testing.assert_array_equal(backbone.get_weights()[0], planted_backbone.get_weights()[0])
    trainable = {layer.name for layer in backbone.layers if layer.trainable and layer.weights}
    assert trainable and all(n.startswith("conv5_") for n in trainable)
    assert not any(
        isinstance(backbone.get_layer(n), keras.layers.BatchNormalization) for n in trainable
    )


def test_weights_for_another_architecture_are_refused(tmp_path):
    path = tmp_path / "mlp.h5"
    _write_legacy_h5(models.build_mlp(), path)
    with pytest.raises(models.ModelConfigError, match="another architecture"):
        models.build_resnet50(32, str(path), "frozen")


def test_corrupt_weights_file_is_refused(tmp_path):
    path = tmp_path / "broken.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(models.ModelConfigError, match="broken.h5"):
        models.build_resnet50(32, str(path), "frozen")
