"""Model builders: the dense baseline, a small CNN and ResNet50 transfer, plus weights.

`WEIGHTS` is honest about what it loads: `imagenet` uses Keras's own loading code (the
Keras cache, then a download) and fails with remedies when neither works; `auto` falls
back to random initialisation with the backbone unfrozen; a path loads that file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import keras
from keras import layers

from fmnist_lib.data import NUM_CLASSES
from fmnist_lib.preprocess import check_image_size, parse_augment

MODELS = ("mlp", "cnn", "resnet50")
FINE_TUNE_STAGES = ("frozen", "top", "full")
WEIGHT_CHOICES = ("imagenet", "none", "auto")  # or a path to a weights file
RESNET_NOTOP_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
TOP_STAGE_PREFIX = "conv5_"  # the last ResNet50 stage, unfrozen by FINE_TUNE="top"


class ModelConfigError(ValueError):
    """An unknown model, fine-tune stage or weights choice, or an unusable weights file."""


@dataclass(frozen=True)
class WeightsChoice:
    """What was asked for and what was actually used."""

    requested: str
    used: str  # "imagenet", "random", or the resolved path of a weights file
    fine_tune: str  # the stage actually trained
    note: str = ""

    @property
    def is_imagenet(self) -> bool:
        return self.used == "imagenet"

    def banner(self) -> str:
        """One prominent line saying which weights were used."""
        what = {
            "imagenet": "ImageNet-pretrained weights (transfer learning)",
            "random": "RANDOM initialisation: this is NOT ImageNet transfer",
        }.get(self.used, f"weights from file {self.used}")
        extra = f" ({self.note})" if self.note else ""
        return f"WEIGHTS USED: {what}; fine-tune stage: {self.fine_tune}{extra}"


def validate_choice(
    model: str, fine_tune: str, weights: str, image_size: int, augment: str = "none"
) -> None:
    """Refuse unknown names and impossible sizes before anything is built."""
    try:
        parse_augment(augment)
    except ValueError as exc:
        raise ModelConfigError(str(exc)) from None
    if model not in MODELS:
        raise ModelConfigError(f"MODEL={model!r} is unknown; choose one of {', '.join(MODELS)}")
    if model != "resnet50":
        return
    if fine_tune not in FINE_TUNE_STAGES:
        raise ModelConfigError(
            f"FINE_TUNE={fine_tune!r} is unknown; choose one of {', '.join(FINE_TUNE_STAGES)}"
        )
    try:
        check_image_size(image_size)
    except ValueError as exc:
        raise ModelConfigError(str(exc)) from None
    if weights in WEIGHT_CHOICES:
        if weights == "none" and fine_tune != "full":
            raise ModelConfigError(
                f"WEIGHTS='none' with FINE_TUNE={fine_tune!r} would train on random, frozen "
                "features; use FINE_TUNE='full', or WEIGHTS='auto'"
            )
        return
    path = Path(weights)
    if not path.is_file():
        raise ModelConfigError(
            f"WEIGHTS={weights!r}: not one of {', '.join(WEIGHT_CHOICES)} and no such file"
        )
    if not path.name.endswith(".h5"):
        raise ModelConfigError(
            f"WEIGHTS={weights!r}: expected a Keras .h5 / .weights.h5 weights file"
        )


def build_mlp(input_shape: tuple[int, ...] = (28, 28), hidden: tuple[int, int] = (512, 256)):
    """The dense baseline: Flatten, two hidden Dense layers, a Dense softmax output."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Flatten(name="flatten")(inputs)
    x = layers.Dense(hidden[0], activation="relu", name="dense_1")(x)
    x = layers.Dense(hidden[1], activation="relu", name="dense_2")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="softmax")(x)
    return keras.Model(inputs, outputs, name="mlp")


def build_cnn(input_shape: tuple[int, ...] = (28, 28, 1), dropout: float = 0.4) -> keras.Model:
    """A small CNN: three conv/BN/ReLU/max-pool blocks (32, 64, 128), then a dense head."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for i, filters in enumerate((32, 64, 128), 1):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv_{i}")(x)
        x = layers.BatchNormalization(name=f"bn_{i}")(x)
        x = layers.ReLU(name=f"relu_{i}")(x)
        x = layers.MaxPooling2D(name=f"pool_{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(dropout, name="dropout_1")(x)
    x = layers.Dense(256, activation="relu", name="dense")(x)
    x = layers.Dropout(dropout, name="dropout_2")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="softmax")(x)
    return keras.Model(inputs, outputs, name="cnn")


def build_head(features: int = 2048, hidden: int = 256) -> keras.Model:
    """The ResNet50 head on pooled features: BatchNormalization, Dense, softmax."""
    inputs = keras.Input(shape=(features,), name="pooled_features")
    x = layers.BatchNormalization(name="head_bn")(inputs)
    x = layers.Dense(hidden, activation="relu", name="head_dense")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="head_softmax")(
        x
    )
    return keras.Model(inputs, outputs, name="head")


def resolve_weights(requested: str, fine_tune: str) -> tuple[str | None, WeightsChoice]:
    """Decide what `keras.applications.ResNet50(weights=...)` gets, honestly.

    Returns:
        The value to pass as `weights` and a record of what is used.

    Raises:
        ModelConfigError: `imagenet` when the file is neither cached nor downloadable.
    """
    if requested == "none":
        return None, WeightsChoice(requested, "random", fine_tune)
    if requested not in ("imagenet", "auto"):
        return str(Path(requested).resolve()), WeightsChoice(
            requested, str(Path(requested).resolve()), fine_tune
        )
    try:
        path = imagenet_weights_file()
    except Exception as exc:  # offline: Keras raises whatever its download raised
        if requested == "imagenet":
            raise ModelConfigError(imagenet_remedies(exc)) from exc
        return None, WeightsChoice(
            requested,
            "random",
            "full",
            note=f"ImageNet weights unavailable ({str(exc)[:120]}); backbone unfrozen "
            "because frozen random features are meaningless",
        )
    return path, WeightsChoice(requested, "imagenet", fine_tune)


def imagenet_weights_file() -> str:
    """Path of the ImageNet no-top weights, through Keras's own cache-then-download code."""
    from keras.src.applications import resnet
    from keras.src.utils import file_utils

    file_hash = resnet.WEIGHTS_HASHES["resnet50"][1]
    return file_utils.get_file(
        RESNET_NOTOP_FILE,
        resnet.BASE_WEIGHTS_PATH + RESNET_NOTOP_FILE,
        cache_dir=keras_home(),
        cache_subdir="models",
        file_hash=file_hash,
    )


def keras_home() -> str:
    """`$KERAS_HOME`, read at call time (Keras itself reads it once, at import)."""
    return os.environ.get("KERAS_HOME", str(Path.home() / ".keras"))


def imagenet_remedies(exc: BaseException) -> str:
    """The error message for WEIGHTS='imagenet' when the weights cannot be had."""
    home = keras_home()
    return (
        f"WEIGHTS='imagenet': the ImageNet weights are not in the Keras cache and could not "
        f"be downloaded ({type(exc).__name__}: {exc}). Remedies: (1) place "
        f"{RESNET_NOTOP_FILE} in {home}/models/; (2) pass WEIGHTS=/path/to/that/file; "
        "(3) use WEIGHTS='auto' (random initialisation, backbone unfrozen) or WEIGHTS='none'"
    )


def build_resnet50(image_size: int, weights: str = "auto", fine_tune: str = "frozen"):
    """ResNet50 backbone (`include_top=False`) with global pooling and the BN/Dense head.

    Returns:
        `(model, backbone, head, choice)`: the full model, its parts and the weights record.
    """
    validate_choice("resnet50", fine_tune, weights, image_size)
    keras_weights, choice = resolve_weights(weights, fine_tune)
    try:
        backbone = keras.applications.ResNet50(
            include_top=False,
            weights=keras_weights,
            input_shape=(image_size, image_size, 3),
        )
    except (ValueError, OSError, KeyError) as exc:
        raise ModelConfigError(
            f"WEIGHTS={weights!r}: could not load {keras_weights} into ResNet50 without top "
            f"({type(exc).__name__}: {exc}); the file is corrupt or built for another "
            "architecture"
        ) from exc
    set_trainable(backbone, choice.fine_tune)
    head = build_head(backbone.output_shape[-1])
    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = backbone(inputs)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = head(x)
    model = keras.Model(inputs, outputs, name="resnet50_transfer")
    return model, backbone, head, choice


def set_trainable(backbone: keras.Model, stage: str) -> None:
    """Freeze the backbone (`frozen`), unfreeze its last stage (`top`) or all (`full`).

    BatchNormalization layers stay frozen in `top`, as Keras's transfer guide advises.
    """
    backbone.trainable = stage != "frozen"
    if stage == "top":
        for layer in backbone.layers:
            layer.trainable = layer.name.startswith(TOP_STAGE_PREFIX) and not isinstance(
                layer, layers.BatchNormalization
            )


def build_model(model: str, image_size: int = 32, weights: str = "auto", fine_tune: str = "frozen"):
    """Build the model named by `MODEL`; returns `(model, weights_choice_or_None)`."""
    validate_choice(model, fine_tune, weights, image_size)
    if model == "mlp":
        return build_mlp(), None
    if model == "cnn":
        return build_cnn(), None
    full, _, _, choice = build_resnet50(image_size, weights, fine_tune)
    return full, choice
