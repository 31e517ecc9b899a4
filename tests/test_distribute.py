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

# Trains the same seeded model on the same batches, with or without DataParallel.
SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import numpy as np, keras
    from fmnist_lib import distribute, models, train

    parallel = distribute.data_parallel(32, enable=sys.argv[2] == "on")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 28, 28)).astype("float32")
    y = np.arange(256) % 10
    keras.utils.set_random_seed(3)
    model = models.build_mlp(hidden=(64, 32))
    recipe = train.TrainConfig(epochs=2, batch_size=32, learning_rate=1e-3, seed=0)
    res = train.fit_stage(model, Path(sys.argv[1]), x, y, None, recipe, tensorboard=False)
    kernel = res.model.get_layer("softmax").get_weights()[0]
    print(json.dumps({"distribution": parallel["distribution"],
                      "devices": len(parallel["devices"]),
                      "loss": [r["loss"] for r in res.history],
                      "kernel": kernel.ravel()[:200].tolist()}))
    """
)


# The ResNet50 input pipeline on a tiny network: raw pixels held on the device, augmentation
# inside the model, a global batch split over the devices.
DEVICE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import numpy as np, keras
    from fmnist_lib import augment, distribute, layers, train

    parallel = distribute.data_parallel(32, enable=sys.argv[2] == "on")
    keras.utils.set_random_seed(3)
    inputs = keras.Input((28, 28, 1), dtype="uint8")
    x = layers.RandomAugment.from_spec(augment.parse_augment("flip+shift:4+cutout"), 1)(inputs)
    x = layers.ResNetInput(32, "standardize", 70.0, 90.0)(x)
    x = keras.layers.Conv2D(8, 3, strides=2)(x)
    x = keras.layers.BatchNormalization(momentum=0.9)(x)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(x))
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (256, 28, 28, 1), dtype=np.uint8)
    y = np.arange(256) % 10
    recipe = train.TrainConfig(epochs=2, batch_size=32, learning_rate=0.05, optimizer="sgd",
                               seed=0)
    res = train.fit_stage(model, Path(sys.argv[1]), images, y, None, recipe, on_device=True,
                          tensorboard=False)
    kernel = res.model.layers[-1].get_weights()[0]
    print(json.dumps({"distribution": parallel["distribution"],
                      "devices": len(parallel["devices"]),
                      "loss": [r["loss"] for r in res.history],
                      "kernel": kernel.ravel()[:200].tolist()}))
    """
)


def train_on(tmp_path: Path, mode: str, script: str = SCRIPT) -> dict:
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "JAX_PLATFORMS": "cpu",
    }
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / mode), mode],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_data_parallel_on_two_devices_matches_one(tmp_path):
    import numpy as np

    one = train_on(tmp_path, "off")
    two = train_on(tmp_path, "on")
    assert one["distribution"] is None and one["devices"] == 2
    assert two["distribution"] == "DataParallel" and two["devices"] == 2
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=1e-4)
    np.testing.assert_allclose(two["kernel"], one["kernel"], atol=1e-5)


@pytest.mark.slow
def test_in_model_augmentation_on_two_devices_matches_one(tmp_path):
    import numpy as np

    one = train_on(tmp_path, "off", DEVICE_SCRIPT)
    two = train_on(tmp_path, "on", DEVICE_SCRIPT)
    assert two["distribution"] == "DataParallel" and one["distribution"] is None
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=1e-4)
    np.testing.assert_allclose(two["kernel"], one["kernel"], atol=1e-5)


def test_precision_and_batch_are_checked():
    with pytest.raises(ValueError, match="PRECISION='fp8'"):
        distribute.set_precision("fp8")
    assert distribute.data_parallel(30)["distribution"] is None  # TensorFlow: one device
