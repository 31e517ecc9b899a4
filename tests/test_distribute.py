"""fmnist_lib.distribute: DataParallel over two virtual CPU devices equals one device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fmnist_lib import distribute

pytest.importorskip("jax")

# Trains two seeded models on the same batches, with or without DataParallel, in one process
# per mode (each process pays for the JAX and Keras start-up once):
# - an MLP fed from NumPy batches;
# - the ResNet50 input pipeline on a tiny network: raw pixels held on the device, augmentation
#   inside the model, a global batch split over the devices.
SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import numpy as np, keras
    from fmnist_lib import augment, distribute, layers, models, train

    try:  # two devices cannot split 33 images evenly: refused before any work
        distribute.data_parallel(33)
        refused = None
    except ValueError as exc:
        refused = str(exc)
    parallel = distribute.data_parallel(32, enable=sys.argv[2] == "on")
    out = {"distribution": parallel["distribution"], "devices": len(parallel["devices"]),
           "refused": refused}

    def summary(res, layer):
        kernel = layer.get_weights()[0]
        return {"loss": [r["loss"] for r in res.history], "kernel": kernel.ravel()[:200].tolist()}

    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 28, 28)).astype("float32")
    y = np.arange(256) % 10
    keras.utils.set_random_seed(3)
    model = models.build_mlp(hidden=(64, 32))
    recipe = train.TrainConfig(epochs=2, batch_size=32, learning_rate=1e-3, seed=0)
    quiet = train.RunOptions(tensorboard=False)
    res = train.fit_stage(model, Path(sys.argv[1]) / "mlp", train.StageData(x, y), recipe, quiet)
    out["mlp"] = summary(res, res.model.get_layer("softmax"))

    keras.utils.set_random_seed(3)
    inputs = keras.Input((28, 28, 1), dtype="uint8")
    h = layers.RandomAugment.from_spec(augment.parse_augment("flip+shift:4+cutout"), 1)(inputs)
    h = layers.ResNetInput(32, "standardize", 70.0, 90.0)(h)
    h = keras.layers.Conv2D(8, 3, strides=2)(h)
    h = keras.layers.BatchNormalization(momentum=0.9)(h)
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(h))
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(h))
    images = rng.integers(0, 256, (256, 28, 28, 1), dtype=np.uint8)
    recipe = train.TrainConfig(epochs=2, batch_size=32, learning_rate=0.05, optimizer="sgd",
                               seed=0)
    res = train.fit_stage(model, Path(sys.argv[1]) / "device",
                          train.StageData(images, y, on_device=True), recipe, quiet)
    out["device"] = summary(res, res.model.layers[-1])
    print(json.dumps(out))
    """
)


def train_on(tmp_path: Path, mode: str) -> dict:
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "JAX_PLATFORMS": "cpu",
    }
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / mode), mode],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def one_and_two(tmp_path_factory) -> tuple[dict, dict]:
    root = tmp_path_factory.mktemp("distribute")
    return train_on(root, "off"), train_on(root, "on")


@pytest.mark.slow
def test_data_parallel_on_two_devices_matches_one(one_and_two):
    import numpy as np

    one, two = one_and_two
    assert one["distribution"] is None and one["devices"] == 2
    assert two["distribution"] == "DataParallel" and two["devices"] == 2
    np.testing.assert_allclose(two["mlp"]["loss"], one["mlp"]["loss"], rtol=1e-4)
    np.testing.assert_allclose(two["mlp"]["kernel"], one["mlp"]["kernel"], atol=1e-5)


@pytest.mark.slow
def test_in_model_augmentation_on_two_devices_matches_one(one_and_two):
    import numpy as np

    one, two = one_and_two
    np.testing.assert_allclose(two["device"]["loss"], one["device"]["loss"], rtol=1e-4)
    np.testing.assert_allclose(two["device"]["kernel"], one["device"]["kernel"], atol=1e-5)


def test_precision_is_checked():
    with pytest.raises(ValueError, match="PRECISION='fp8'"):
        distribute.set_precision("fp8")


@pytest.mark.slow
def test_batch_that_two_devices_cannot_split_is_refused(one_and_two):
    # Run on JAX with two devices (the check is skipped where nothing is split).
    for mode in one_and_two:
        assert mode["refused"] == (
            "BATCH_SIZE=33: with 2 devices the batch must be a multiple of 2 for data parallelism"
        )
