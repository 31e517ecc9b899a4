"""What a model costs: trained parameters and inference time, measured on a tiny model."""

from __future__ import annotations

import numpy as np
import pytest

from fmnist_lib import evaluate


class CountingModel:
    """A stand-in with `predict_on_batch` that records the batch sizes it is called with."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def predict_on_batch(self, x):
        self.sizes.append(len(x))
        return np.zeros((len(x), 10), dtype="float32")


def test_inference_cost_times_batch_one_and_the_large_batch_after_warm_up():
    model = CountingModel()
    cost = evaluate.inference_cost(
        model, np.zeros((50, 28, 28)), repeats=3, warmup=2, large_batch=20
    )
    assert model.sizes == [1] * 5 + [20] * 5  # 2 warm-up and 3 timed calls per size
    assert cost.large_batch == 20 and cost.repeats == 3
    assert cost.ms_per_image_batch1 > 0 and cost.ms_per_image_large_batch > 0
    assert cost.images_per_second == pytest.approx(1000 / cost.ms_per_image_large_batch)
    assert "median of 3" in cost.method and "2 warm-up" in cost.method
    assert evaluate.InferenceCost.from_dict(cost.to_dict()) == cost


def test_inference_cost_uses_every_image_when_fewer_than_the_large_batch():
    model = CountingModel()
    cost = evaluate.inference_cost(model, np.zeros((7, 28, 28)), repeats=1, warmup=0)
    assert cost.large_batch == 7 and model.sizes == [1, 7]


def test_inference_cost_of_a_keras_model():
    from fmnist_lib import models

    mlp = models.build_mlp(hidden=(8, 4))
    x = np.random.default_rng(0).normal(size=(40, 28, 28)).astype("float32")
    cost = evaluate.inference_cost(mlp, x, repeats=2)
    assert cost.large_batch == 40 and cost.ms_per_image_batch1 > 0 < cost.images_per_second


def test_inference_cost_refusals():
    with pytest.raises(ValueError, match=r"x: no images to time inference on \(got 0\)"):
        evaluate.inference_cost(CountingModel(), np.zeros((0, 28, 28)))
    with pytest.raises(ValueError, match="repeats=0"):
        evaluate.inference_cost(CountingModel(), np.zeros((3, 28, 28)), repeats=0)
    with pytest.raises(ValueError, match="expected fields"):
        evaluate.InferenceCost.from_dict({"ms_per_image_batch1": 1.0})


def test_trainable_params_counts_only_what_training_updates():
    """A frozen trunk and a trained head, as ResNet50 frozen: BatchNorm's moving statistics
    are not trained either."""
    import keras

    inputs = keras.Input((6,))
    trunk = keras.layers.Dense(5, name="trunk")  # 35 parameters, frozen
    trunk.trainable = False
    bn = keras.layers.BatchNormalization()  # 5 scale + 5 offset trained, 10 statistics not
    head = keras.layers.Dense(2)  # 12 trained
    model = keras.Model(inputs, head(bn(trunk(inputs))))
    assert model.count_params() == 35 + 20 + 12
    assert evaluate.trainable_params(model) == 10 + 12
