"""Issue 21's options: weight decay that spares BatchNorm and biases, multi-crop TTA, and the
opt-in JAX compilation cache. All run on the CPU."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from fmnist_lib import distribute, evaluate, train


def _decayed_after_one_step(decay_norm_and_bias: bool) -> dict[str, bool]:
    """Which variables one SGD step with a zero gradient moved: only weight decay moves any."""
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization()]
    )
    for v in model.trainable_variables:
        v.assign(np.full(v.shape, 0.5, "float32"))
    config = train.TrainConfig(
        optimizer="sgd",
        learning_rate=0.1,
        weight_decay=0.5,
        decay_norm_and_bias=decay_norm_and_bias,
    )
    model.compile(optimizer=train.make_optimizer(config, 0), loss=lambda y, p: 0.0 * p)
    model.fit(np.ones((8, 4), "float32"), np.zeros((8, 3), "float32"), epochs=1, verbose=0)
    return {v.name: not np.allclose(v.numpy(), 0.5) for v in model.trainable_variables}


def test_decay_norm_and_bias_false_spares_batchnorm_and_biases():
    assert _decayed_after_one_step(True) == {
        "kernel": True, "bias": True, "gamma": True, "beta": True
    }  # fmt: skip
    assert _decayed_after_one_step(False) == {
        "kernel": True, "bias": False, "gamma": False, "beta": False
    }  # fmt: skip


def test_shifted_moves_pixels_and_fills_background():
    images = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3, 1) + 1
    down = evaluate.shifted(images, 1, 0)
    assert (down[:, 0] == 0).all() and (down[:, 1:] == images[:, :2]).all()
    left = evaluate.shifted(images, 0, -1)
    assert (left[:, :, -1] == 0).all() and (left[:, :, :2] == images[:, :, 1:]).all()
    assert (evaluate.shifted(images, 0, 0) == images).all()


class _ViewCounter:
    """A stand-in model that returns each batch's mean pixel as the class-0 score."""

    def __init__(self) -> None:
        self.views: list[np.ndarray] = []

    def predict(self, x, batch_size=512, verbose=0):
        self.views.append(x.copy())
        return np.stack([x.reshape(len(x), -1).mean(axis=1), np.zeros(len(x))], axis=1)


def test_predict_views_averages_ten_views_and_refuses_a_negative_shift():
    images = np.zeros((1, 5, 5, 1), np.float32)
    images[0, 2, 2] = 10.0  # one bright pixel in the centre: every view keeps it
    counter = _ViewCounter()
    proba = evaluate.predict_views(counter, images, shift=1)
    assert len(counter.views) == 10
    assert proba[0, 0] == pytest.approx(10.0 / 25)
    edge = np.zeros((1, 5, 5, 1), np.float32)
    edge[0, 0, 0] = 10.0  # a corner pixel leaves the frame in 2 of the 5 moves of each view
    assert evaluate.predict_views(_ViewCounter(), edge, 1)[0, 0] == pytest.approx(6 / 10 * 10 / 25)
    with pytest.raises(ValueError, match="shift=-1"):
        evaluate.predict_views(counter, images, shift=-1)


def test_compilation_cache_is_off_unless_named(monkeypatch, tmp_path):
    monkeypatch.delenv(distribute.CACHE_SETTING, raising=False)
    assert distribute.compilation_cache() is None
    file = tmp_path / "file"
    file.write_text("")
    if keras.backend.backend() == "jax":
        with pytest.raises(NotADirectoryError, match=distribute.CACHE_SETTING):
            distribute.compilation_cache(file)


def test_compilation_cache_setting_turns_on_jax_cache(tmp_path):
    """In a fresh JAX process: the setting names the folder JAX caches compiled code in."""
    code = textwrap.dedent(
        f"""
        import os
        os.environ["KERAS_BACKEND"] = "jax"
        os.environ["{distribute.CACHE_SETTING}"] = {str(tmp_path / "cache")!r}
        import jax
        from fmnist_lib import distribute
        record = distribute.data_parallel(8)
        assert record["compilation_cache"] == jax.config.jax_compilation_cache_dir
        jax.jit(lambda x: x * 2)(jax.numpy.ones(3)).block_until_ready()
        print(len(os.listdir(record["compilation_cache"])))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.split()[-1]) >= 1  # an executable was written to the folder
