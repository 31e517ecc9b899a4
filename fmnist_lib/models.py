"""Model builders: the dense baseline, a small CNN and ResNet50 with the seed's head.

ResNet50 comes from `keras.applications.ResNet50`, with one of two stems:

- `imagenet`: the application as it is (7x7 stride-2 convolution, then a stride-2 max-pool),
  so a 32x32 input ends in a 1x1 map;
- `small`: the same layers, names and weight shapes, with `conv1_conv` at stride 1 and the
  max-pool replaced by an identity, so 32 px ends in 4x4 and 28 px in 4x4. ImageNet weights
  load into it unchanged.

The model takes raw `(28, 28, 1)` uint8 pixels; augmentation (training only), resizing and
normalisation are layers inside it (`fmnist_lib.layers`).

`WEIGHTS` is honest about what it loads: `imagenet` uses `keras.utils.get_file` (the
Keras cache, then a download, both checked against the published hash) and fails with
remedies when neither works; `auto` falls back to random initialisation, keeping the
requested stage, so a frozen backbone becomes the labelled control "frozen random
features", never called transfer; a path loads that file.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers

from fmnist_lib.augment import parse_augment
from fmnist_lib.data import NUM_CLASSES
from fmnist_lib.layers import RandomAugment, ResNetInput
from fmnist_lib.parameters import MIN_IMAGE_SIZE, weights_problems

MODELS = ("mlp", "cnn", "resnet50")
FINE_TUNE_STAGES = ("frozen", "top", "full")
STEMS = ("imagenet", "small")
RESNET_NOTOP_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
# Where keras.applications.ResNet50 downloads that file from, and its published MD5 (Keras 3.15.1)
RESNET_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
RESNET_NOTOP_MD5 = "4d473c1dd8becc155b73f8504c6f6626"
NO_DOWNLOAD = "FMNIST_NO_DOWNLOAD"  # set: the ImageNet weights come from the Keras cache only
TOP_STAGE_PREFIX = "conv5_"  # the last ResNet50 stage, unfrozen by FINE_TUNE="top"
SMALL_STEM_IDENTITIES = ("pool1_pad", "pool1_pool")  # removed by the small stem
RAW_SHAPE = (28, 28, 1)  # what every ResNet50 model takes: raw pixels


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

    @property
    def is_transfer(self) -> bool:
        """Pretrained weights (ImageNet or a file) were loaded: only then is it transfer."""
        return self.used != "random"

    @property
    def label(self) -> str:
        """A short, honest name for the method, for titles, tables and slides."""
        if not self.is_transfer:
            return {
                "frozen": "frozen random features (control, not transfer)",
                "top": "random features, last stage trained (not transfer)",
                "full": "trained from random initialisation (not transfer)",
            }[self.fine_tune]
        source = "ImageNet" if self.is_imagenet else f"weights from {Path(self.used).name}"
        stage = {
            "frozen": "frozen backbone",
            "top": "last stage fine-tuned",
            "full": "fine-tuned end to end",
        }[self.fine_tune]
        return f"{source} transfer, {stage}"

    def banner(self) -> str:
        """One prominent line saying which weights were used."""
        what = {
            "imagenet": "ImageNet-pretrained weights (transfer learning)",
            "random": "RANDOM initialisation: this is NOT ImageNet transfer",
        }.get(self.used, f"weights from file {self.used}")
        extra = f" ({self.note})" if self.note else ""
        return f"WEIGHTS USED: {what}; fine-tune stage: {self.fine_tune}; {self.label}{extra}"


@dataclass(frozen=True)
class ResNetSpec:
    """Everything that decides how the ResNet50 model is built."""

    image_size: int = 32  # input side after resizing inside the model
    weights: str = "auto"  # imagenet | none | auto | path to a .h5 weights file
    fine_tune: str = "frozen"  # frozen | top | full
    stem: str = "imagenet"  # imagenet | small
    bn_momentum: float = 0.99  # BatchNormalization moving-average momentum (Keras: 0.99)
    zero_init_residual: bool = False  # random init only: each block's last BN scale starts at 0
    augment: str = "none"  # AUGMENT, applied inside the model in training
    seed: int = 42  # seeds the augmentation layer's random stream


def check_image_size(image_size: int, stem: str = "imagenet") -> int:
    """Refuse ResNet50 input sizes below the stem's minimum (32 for imagenet, 28 for small)."""
    least = MIN_IMAGE_SIZE.get(stem, 32)
    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < least:
        raise ModelConfigError(
            f"IMAGE_SIZE={image_size!r}: ResNet50 with STEM={stem!r} needs inputs of at least "
            f"{least}x{least}; use {least} or more"
        )
    return image_size


def validate_choice(
    model: str,
    fine_tune: str,
    weights: str,
    image_size: int,
    augment: str = "none",
    stem: str = "imagenet",
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
    if stem not in STEMS:
        raise ModelConfigError(f"STEM={stem!r} is unknown; choose one of {', '.join(STEMS)}")
    check_image_size(image_size, stem)
    problems = weights_problems(weights)
    if problems:
        raise ModelConfigError(problems[0])


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
            fine_tune,
            note=f"ImageNet weights unavailable ({str(exc)[:120]}); see README, "
            "'ResNet50 weights, honestly', for how to provide them",
        )
    return path, WeightsChoice(requested, "imagenet", fine_tune)


def imagenet_weights_file() -> str:
    """Path of the ImageNet no-top weights: the Keras cache if its hash matches, else a download.

    With `FMNIST_NO_DOWNLOAD` set (the tests set it), the cache only: a missing file or one
    whose MD5 is not the published one raises, and nothing is fetched.
    """
    if os.environ.get(NO_DOWNLOAD):
        cached = Path(keras_home()) / "models" / RESNET_NOTOP_FILE
        if not cached.is_file():
            raise FileNotFoundError(f"{cached} is missing, and {NO_DOWNLOAD} forbids the download")
        digest = hashlib.md5(cached.read_bytes()).hexdigest()
        if digest != RESNET_NOTOP_MD5:
            raise ValueError(f"{cached} has MD5 {digest}, not the published {RESNET_NOTOP_MD5}")
        return str(cached)
    return keras.utils.get_file(
        RESNET_NOTOP_FILE,
        RESNET_WEIGHTS_URL + RESNET_NOTOP_FILE,
        cache_dir=keras_home(),
        cache_subdir="models",
        file_hash=RESNET_NOTOP_MD5,
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


def resnet50_backbone(spec: ResNetSpec, keras_weights: str | None, name: str = "resnet50"):
    """`keras.applications.ResNet50` without top, with the stem and BatchNorm momentum asked for.

    The application is built (and its weights loaded) by Keras; for the small stem or another
    momentum it is cloned with `keras.models.clone_model`, changing only strides, the
    max-pool and momenta, and the loaded weights are copied over unchanged.
    """
    size = spec.image_size
    try:
        app = keras.applications.ResNet50(
            include_top=False,
            weights=keras_weights,
            input_shape=(max(size, MIN_IMAGE_SIZE["imagenet"]),) * 2 + (3,),
        )
    except (ValueError, OSError, KeyError) as exc:
        raise ModelConfigError(
            f"WEIGHTS={spec.weights!r}: could not load {keras_weights} into ResNet50 without "
            f"top ({type(exc).__name__}: {exc}); the file is corrupt or built for another "
            "architecture"
        ) from exc
    if spec.stem == "imagenet" and spec.bn_momentum == 0.99 and app.input_shape[1] == size:
        return app  # the application itself

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        if spec.stem == "small" and layer.name in SMALL_STEM_IDENTITIES:
            return layers.Identity(name=layer.name)
        config = layer.get_config()
        if spec.stem == "small" and layer.name == "conv1_conv":
            config["strides"] = (1, 1)
        if isinstance(layer, layers.BatchNormalization):
            config["momentum"] = spec.bn_momentum
        return layer.__class__.from_config(config)

    backbone = keras.models.clone_model(
        app, input_tensors=keras.Input((size, size, 3), name="resnet_input"), clone_function=clone
    )
    backbone.set_weights(app.get_weights())
    return backbone


def zero_init_residuals(backbone: keras.Model) -> int:
    """Start every residual block as the identity: the scale (gamma) of each block's last
    BatchNormalization set to 0 (Goyal et al., 2017). Returns how many were set."""
    last_bns = [la for la in backbone.layers if la.name.endswith("_3_bn")]
    for layer in last_bns:
        layer.gamma.assign(np.zeros(layer.gamma.shape, layer.gamma.dtype))
    return len(last_bns)


def build_resnet50(spec: ResNetSpec, standardizer=None):
    """ResNet50 on raw `(28, 28, 1)` pixels: [augment] -> resize and normalise -> backbone ->
    global average pooling -> the BN/Dense head.

    Args:
        spec: stem, size, weights, stage, momentum, augmentation and seed.
        standardizer: mean and std of the training pixels, used with random initialisation;
            pretrained weights get `preprocess_input` (caffe), as they were trained with it.

    Returns:
        `(model, backbone, head, choice)`: the full model, its parts and the weights record.
    """
    validate_choice(
        "resnet50", spec.fine_tune, spec.weights, spec.image_size, spec.augment, spec.stem
    )
    keras_weights, choice = resolve_weights(spec.weights, spec.fine_tune)
    backbone = resnet50_backbone(spec, keras_weights)
    if spec.zero_init_residual and not choice.is_transfer:  # pretrained scales stay as loaded
        zero_init_residuals(backbone)
    set_trainable(backbone, choice.fine_tune)
    head = build_head(backbone.output_shape[-1])
    if choice.is_transfer or standardizer is None:
        to_input = ResNetInput(spec.image_size, "caffe", name="resnet_input")
    else:
        to_input = ResNetInput(
            spec.image_size,
            "standardize",
            standardizer.mean,
            standardizer.std,
            name="resnet_input",
        )
    inputs = keras.Input(shape=RAW_SHAPE, dtype="uint8", name="image")
    x = inputs
    augment = parse_augment(spec.augment)
    if augment is not None:
        x = RandomAugment.from_spec(augment, spec.seed)(x)
    x = backbone(to_input(x))
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = head(x)
    model = keras.Model(inputs, outputs, name=f"resnet50_{spec.stem}_stem")
    return model, backbone, head, choice


def feature_extractor(model: keras.Model) -> keras.Model:
    """The ResNet50 model up to its pooled features (what the head is trained on)."""
    return keras.Model(model.inputs, model.get_layer("gap").output, name=f"{model.name}_features")


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


def build_model(model: str, spec: ResNetSpec | None = None, standardizer=None):
    """Build the model named by `MODEL`; returns `(model, weights_choice_or_None)`.

    `spec` and `standardizer` matter for `resnet50` only.
    """
    spec = spec or ResNetSpec()
    validate_choice(model, spec.fine_tune, spec.weights, spec.image_size, spec.augment, spec.stem)
    if model == "mlp":
        return build_mlp(), None
    if model == "cnn":
        return build_cnn(), None
    full, _, _, choice = build_resnet50(spec, standardizer)
    return full, choice
