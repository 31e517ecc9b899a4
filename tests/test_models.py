"""fmnist_lib.models: builders, honest weights resolution offline, bad choices refused."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

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
        (("resnet50", "frozen", "auto", 28), "IMAGE_SIZE=28.*STEM='imagenet'.*at least 32x32"),
        (("resnet50", "frozen", "auto", 27, "none", "small"), "IMAGE_SIZE=27.*at least 28x28"),
        (("resnet50", "frozen", "auto", 32, "none", "tiny"), "STEM='tiny' is unknown"),
        (("resnet50", "frozen", "/no/such.h5", 32), "no such file"),
        (("cnn", "frozen", "auto", 32, "flip+rotate"), "unknown augmentation .rotate."),
        (("cnn", "frozen", "auto", 32, "flip:3"), "only shift and cutout take a size"),
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


def test_auto_offline_keeps_the_frozen_stage_as_a_labelled_control(keras_home):
    value, choice = models.resolve_weights("auto", "frozen")
    assert value is None and choice.used == "random" and choice.fine_tune == "frozen"
    assert not choice.is_transfer and "NOT ImageNet" in choice.banner()
    assert choice.label == "frozen random features (control, not transfer)"
    assert "transfer," not in choice.label


@pytest.mark.parametrize(
    ("used", "stage", "label"),
    [
        ("imagenet", "frozen", "ImageNet transfer, frozen backbone"),
        ("imagenet", "full", "ImageNet transfer, fine-tuned end to end"),
        ("random", "full", "trained from random initialisation (not transfer)"),
        ("/w/my.h5", "top", "weights from my.h5 transfer, last stage fine-tuned"),
    ],
)
def test_labels_say_transfer_only_with_pretrained_weights(used, stage, label):
    assert models.WeightsChoice("auto", used, stage).label == label


def _write_legacy_h5(model: keras.Model, path: Path) -> None:
    """Write weights in the legacy HDF5 layout of the official ImageNet files.

    `Model.save` to `.h5` writes that layout under a `model_weights` group (with the model's
    config beside it); the official files hold it at the root, so it is copied there.
    """
    full = path.with_name("full_model.h5")
    model.save(full)
    with h5py.File(full, "r") as src, h5py.File(path, "w") as dst:
        group = src["model_weights"]
        for name in group:
            src.copy(group[name], dst, name)
        dst.attrs.update(group.attrs)
    full.unlink()


@pytest.fixture(scope="module")
def planted_backbone():
    keras.utils.set_random_seed(123)
    return keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3))


@pytest.fixture
def planted_cache(keras_home, planted_backbone, monkeypatch):
    """The real Keras cache path: a file the test writes, under Keras's exact name and format."""
    cached = keras_home / "models" / models.RESNET_NOTOP_FILE
    cached.parent.mkdir()
    _write_legacy_h5(planted_backbone, cached)
    assert "layer_names" in h5py.File(cached, "r").attrs  # the official files' root layout
    # The cached file is checked against the published hash; ours has its own.
    md5 = hashlib.md5(cached.read_bytes()).hexdigest()
    monkeypatch.setattr(models, "RESNET_NOTOP_MD5", md5)
    return cached


def test_without_downloads_a_missing_file_is_refused_naming_the_setting(keras_home):
    assert os.environ[models.NO_DOWNLOAD]  # conftest: no test downloads
    with pytest.raises(FileNotFoundError, match=models.NO_DOWNLOAD):
        models.imagenet_weights_file()


@pytest.mark.parametrize("downloads", [False, True], ids=["cache-only", "keras-get-file"])
def test_a_cached_file_with_the_wrong_hash_is_refused(keras_home, monkeypatch, downloads):
    cached = keras_home / "models" / models.RESNET_NOTOP_FILE
    cached.parent.mkdir()
    cached.write_bytes(b"not the ImageNet weights")
    if downloads:  # Keras's get_file checks the hash; its new download fails on a missing
        monkeypatch.delenv(models.NO_DOWNLOAD)  # local file, never the web
        missing = (keras_home / "no-such-dir").as_uri() + "/"
        monkeypatch.setattr(models, "RESNET_WEIGHTS_URL", missing)
    with pytest.raises(models.ModelConfigError, match="could not be downloaded"):
        models.resolve_weights("imagenet", "frozen")
    value, choice = models.resolve_weights("auto", "frozen")
    assert value is None and choice.used == "random"


@pytest.mark.slow
@pytest.mark.parametrize(("stem", "size", "final_map"), [("imagenet", 32, 1), ("small", 28, 4)])
def test_imagenet_weights_load_exactly_into_either_stem(
    planted_cache, planted_backbone, stem, size, final_map
):
    spec = models.ResNetSpec(size, "imagenet", "frozen", stem)
    model, backbone, _, choice = models.build_resnet50(spec)
    assert choice.used == "imagenet" and choice.fine_tune == "frozen"
    assert "ImageNet-pretrained" in choice.banner() and choice.is_transfer
    assert backbone.output_shape == (None, final_map, final_map, 2048)
    planted = {w.path: w for w in planted_backbone.weights}
    assert len(backbone.weights) == len(planted) == 318
    for w in backbone.weights:  # every backbone weight, by name: equal to the planted one
        np.testing.assert_array_equal(w.numpy(), planted[w.path].numpy())
    assert not backbone.trainable and model.get_layer("head").trainable
    assert model.get_layer("resnet_input").get_config()["normalize"] == "caffe"


@pytest.mark.parametrize("downloads", [False, True], ids=["cache-only", "keras-get-file"])
def test_a_planted_file_with_the_expected_hash_is_used_as_it_is(
    planted_cache, monkeypatch, downloads
):
    if downloads:  # the hash matches: Keras's get_file returns the cached file, fetches nothing
        monkeypatch.delenv(models.NO_DOWNLOAD)
        monkeypatch.setattr(models, "RESNET_WEIGHTS_URL", "file:///no/such/dir/")
    assert models.imagenet_weights_file() == str(planted_cache)


def test_small_stem_keeps_names_and_shapes_and_changes_only_the_stem():
    app = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3))
    small = models.resnet50_backbone(models.ResNetSpec(32, "none", "full", "small"), None)
    weighted = [(la.name, [w.shape for w in la.weights]) for la in app.layers if la.weights]
    assert len(weighted) == 106
    assert weighted == [
        (la.name, [w.shape for w in la.weights]) for la in small.layers if la.weights
    ]
    assert small.get_layer("conv1_conv").strides == (1, 1)
    assert app.get_layer("conv1_conv").strides == (2, 2)
    assert isinstance(small.get_layer("pool1_pool"), keras.layers.Identity)
    assert small.output_shape == (None, 4, 4, 2048) and app.output_shape == (None, 1, 1, 2048)


def test_random_init_standardises_and_sets_batchnorm_momentum(keras_home):
    from fmnist_lib.preprocess import Standardizer

    spec = models.ResNetSpec(28, "none", "full", "small", bn_momentum=0.9, augment="flip")
    model, choice = models.build_model("resnet50", spec, Standardizer(0.25, 0.5))
    assert model.input_shape == (None, 28, 28, 1) and model.inputs[0].dtype == "uint8"
    config = model.get_layer("resnet_input").get_config()
    assert (config["normalize"], config["mean"], config["std"]) == ("standardize", 0.25, 0.5)
    bns = [
        la
        for la in model.get_layer("resnet50").layers
        if isinstance(la, keras.layers.BatchNormalization)
    ]
    assert bns and all(la.momentum == 0.9 for la in bns)
    assert model.get_layer("augment").spec.flip and choice.label.startswith("trained from random")


def test_zero_init_residual_starts_each_block_as_identity(keras_home):
    spec = models.ResNetSpec(32, "none", "full", zero_init_residual=True)
    backbone = models.build_resnet50(spec)[1]
    last = [la for la in backbone.layers if la.name.endswith("_3_bn")]
    assert len(last) == 16  # 3 + 4 + 6 + 3 bottleneck blocks
    assert all(not la.gamma.numpy().any() for la in last)
    assert backbone.get_layer("conv2_block1_1_bn").gamma.numpy().all()


@pytest.mark.slow
def test_weights_file_path_loads(tmp_path, planted_backbone):
    path = tmp_path / "my_resnet.h5"
    _write_legacy_h5(planted_backbone, path)
    _, backbone, _, choice = models.build_resnet50(models.ResNetSpec(32, str(path), "top"))
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
        models.build_resnet50(models.ResNetSpec(32, str(path), "frozen"))


def test_corrupt_weights_file_is_refused(tmp_path):
    path = tmp_path / "broken.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(models.ModelConfigError, match="broken.h5"):
        models.build_resnet50(models.ResNetSpec(32, str(path), "frozen"))
