"""Training: per-epoch checkpoints, resumable stages, history, and the frozen-feature cache.

Each stage (`main`, `head`, `top`) trains in its own folder under the model folder:
`history.json` grows by one row every epoch; `checkpoint.keras` and then `state.json` are
replaced atomically after every epoch (or every `checkpoint_seconds`, and after the last), so a
killed run resumes from its last checkpoint, with the batches and augmentation it would have
had. `TrainConfig` is the whole recipe, built once and recorded whole.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np

from fmnist_lib import records
from fmnist_lib.augment import Augment
from fmnist_lib.config import cache_dir as default_cache_dir
from fmnist_lib.data import NUM_CLASSES
from fmnist_lib.preprocess import make_batches

CHECKPOINT = "checkpoint.keras"
log = logging.getLogger(__name__)


class TrainingStateError(RuntimeError):
    """A model folder already holds training that would be overwritten."""


@dataclass
class StageResult:
    """What one training stage produced."""

    model: keras.Model
    history: list[dict[str, float]]
    seconds: float
    resumed_from: int = 0
    stopped_early: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class BatchEpoch(keras.callbacks.Callback):
    """Tell the seeded batches which epoch starts, so its order depends on (seed, epoch)."""

    def __init__(self, batches: Any) -> None:
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.batches.set_epoch(epoch)


class EpochCheckpoint(keras.callbacks.Callback):
    """After every epoch, append to `history.json`; then, when a checkpoint is due, save the
    model and only then `state.json`, which a resumed run trusts.

    A checkpoint is due after the last epoch and whenever `every_seconds` have passed since
    the last one (0: after every epoch). On an accelerator an epoch takes seconds and a
    ResNet50 checkpoint (weights and optimizer state, about 290 MB) nearly one, so saving
    every minute bounds both the cost and the work a kill can lose.
    """

    def __init__(
        self,
        stage_dir: Path,
        history: list[dict[str, float]],
        epochs: int,
        every_seconds: float = 0.0,
    ) -> None:
        super().__init__()
        self.stage_dir = stage_dir
        self.history = history
        self.epochs = epochs
        self.every_seconds = every_seconds
        self._start = self._saved = time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        row = {"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}}
        row["seconds"] = round(time.perf_counter() - self._start, 3)
        now = time.perf_counter()
        due = epoch + 1 == self.epochs or now - self._saved >= self.every_seconds
        if due:
            tmp = self.stage_dir / f".tmp-{CHECKPOINT}"
            self.model.save(tmp)
            tmp.replace(self.stage_dir / CHECKPOINT)
            self._saved = time.perf_counter()
            row["checkpoint_seconds"] = round(self._saved - now, 3)
        self.history.append(row)  # history before state: state.json never runs ahead of it
        records.write_json(self.stage_dir / "history.json", self.history)
        if due:
            records.write_json(
                self.stage_dir / "state.json",
                {"completed_epochs": epoch + 1, "epochs": self.epochs},
            )


def model_dir(run_dir: Path, model: str, *, scratch: bool = False) -> Path:
    """The model's folder in the run. With `scratch` (the interactive folder, not resuming),
    training left there by an earlier session is cleared so the notebook can be re-run."""
    path = Path(run_dir) / "models" / model
    if scratch and path.exists():
        import shutil

        shutil.rmtree(path)
        log.info("cleared earlier interactive training in %s", path)
    path.mkdir(parents=True, exist_ok=True)
    return path


OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class TrainConfig:
    """How a model trains: built once from `03_training`'s parameters (`from_parameters`),
    passed whole, and recorded whole (`dataclasses.asdict`) in `metrics.json`.

    Each field but `steps_per_execution` is the notebook parameter of the same name in upper
    case. For notebook runs the one validator is `fmnist_lib.parameters`, which reads the
    range declared next to each name before anything runs. `__post_init__` keeps five of
    those checks (OPTIMIZER, EMA, CHECKPOINT_SECONDS, VAL_EVERY, and EARLY_STOPPING against
    VAL_EVERY, also in `parameters.training_rules`) for library callers such as the
    benchmarks, which never meet that validator; a test checks both refuse those values.
    """

    epochs: int = 3  # training epochs (for resnet50 frozen/top: epochs of the head)
    batch_size: int = 128  # images per step
    learning_rate: float = 1e-3  # peak learning rate (warm-up, then cosine decay)
    optimizer: str = "adam"  # adam (AdamW when weight_decay > 0) | sgd (Nesterov, momentum 0.9)
    weight_decay: float = 0.0  # decoupled weight decay, scaled by the learning rate
    decay_norm_and_bias: bool = True  # False: weight decay spares norm scales/offsets and biases
    warmup_epochs: int = 0  # linear learning-rate warm-up before the cosine decay
    label_smoothing: float = 0.0  # categorical cross-entropy label smoothing
    ema: float = 0.0  # momentum of an exponential moving average of the weights; 0 disables
    early_stopping: int = 0  # patience in epochs on validation loss; 0 disables
    val_every: int = 1  # validate every N epochs and after the last
    fine_tune_epochs: int = 0  # resnet50, stage top: epochs with the last stage unfrozen
    checkpoint_seconds: float = 0.0  # least seconds between checkpoints; 0: every epoch
    steps_per_execution: int = 1  # training steps per compiled call
    workers: int = 1  # threads preparing host-augmented batches
    seed: int = 42  # batch order, host augmentation, and Keras's seed when fit starts

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"OPTIMIZER={self.optimizer!r}: use one of {', '.join(OPTIMIZERS)}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"EMA={self.ema!r}: use 0 (off) or a momentum in (0, 1), e.g. 0.99")
        if self.checkpoint_seconds < 0:
            raise ValueError(
                f"CHECKPOINT_SECONDS={self.checkpoint_seconds!r}: use 0 (every epoch) or more"
            )
        if self.val_every < 1:
            raise ValueError(f"VAL_EVERY={self.val_every!r}: validate every N >= 1 epochs")
        if self.early_stopping and self.val_every != 1:
            raise ValueError(
                f"EARLY_STOPPING={self.early_stopping} watches every epoch's validation loss: "
                f"it needs VAL_EVERY=1, not {self.val_every}"
            )

    @classmethod
    def from_parameters(cls, params: Mapping[str, Any]) -> TrainConfig:
        """The recipe of a notebook's parameters (`EPOCHS` -> `epochs`, ...); other names
        are ignored and fields the mapping lacks keep their defaults."""
        names = {f.name.upper(): f.name for f in fields(cls)}
        return cls(**{names[key]: value for key, value in params.items() if key in names})

    def validation_epochs(self, epochs: int | None = None) -> list[int]:
        """The 1-based epochs validated: every `val_every`-th and the last."""
        last = self.epochs if epochs is None else epochs
        return [e for e in range(1, last + 1) if e % self.val_every == 0 or e == last]


def one_hot(labels: np.ndarray) -> np.ndarray:
    """Integer labels -> one-hot float32, for categorical cross-entropy."""
    return keras.utils.to_categorical(labels, NUM_CLASSES).astype(np.float32)


def make_optimizer(config: TrainConfig, total_steps: int) -> keras.optimizers.Optimizer:
    """The optimizer of `config`, its learning rate warming up linearly for `warmup_epochs`
    worth of `total_steps`, then following a cosine decay to 1% of the peak."""
    lr: Any = config.learning_rate
    steps_per_epoch = max(1, total_steps // max(1, config.epochs))
    if total_steps > 0:
        warmup = min(steps_per_epoch * config.warmup_epochs, total_steps - 1)
        lr = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else config.learning_rate,
            total_steps - warmup,
            alpha=0.01,
            warmup_target=config.learning_rate if warmup else None,
            warmup_steps=warmup,
        )
    common: dict[str, Any] = {"use_ema": config.ema > 0}
    if config.ema > 0:
        common["ema_momentum"] = config.ema
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(
            lr,
            momentum=0.9,
            nesterov=True,
            weight_decay=config.weight_decay or None,
            **common,
        )
    elif config.weight_decay > 0:
        optimizer = keras.optimizers.AdamW(lr, weight_decay=config.weight_decay, **common)
    else:
        optimizer = keras.optimizers.Adam(lr, **common)
    if _excludes_norm_and_bias(config):
        optimizer.exclude_from_weight_decay(var_names=list(UNDECAYED))
    return optimizer


# Variable names that DECAY_NORM_AND_BIAS=False spares from weight decay: the scale and offset
# of BatchNormalization (and LayerNormalization), and every bias. Matched on the last part of
# the name (TensorFlow's optimizer sees "layer/gamma:0"), so a layer called "bias_..." is
# still decayed.
UNDECAYED = (r"(^|/)(gamma|beta|bias)(:\d+)?$",)


def _excludes_norm_and_bias(config: TrainConfig) -> bool:
    """Whether `config` decays weights but spares normalisation parameters and biases."""
    return config.weight_decay > 0 and not config.decay_norm_and_bias


def compile_model(
    model: keras.Model,
    config: TrainConfig,
    total_steps: int,
    *,
    steps_per_execution: int = 1,
    jit_compile: bool | str = "auto",
) -> None:
    """Compile with `config`'s optimizer and categorical cross-entropy (label smoothing)."""
    model.compile(
        optimizer=make_optimizer(config, total_steps),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
    )


def load_checkpoint(path: Path) -> keras.Model:
    """Load a `.keras` file with `safe_mode=True` (no arbitrary code)."""
    import fmnist_lib.layers  # noqa: F401  (registers the project's layers with Keras)

    return keras.saving.load_model(path, safe_mode=True)


@dataclass(frozen=True, eq=False)
class StageData:
    """One stage's training data and how it is fed to `model.fit`.

    Args:
        x, y: training images (or cached features) and integer labels.
        validation: optional (images, integer labels).
        augment: NumPy augmentation applied on the host to each training batch.
        in_memory: small inputs without augmentation (the head on cached features): pass
            the arrays to Keras, shuffled by Keras from the seed, and run up to 64 steps
            per execution. Saves the per-batch Python round trip of the seeded dataset,
            which dominates a head epoch on the CPU; a resumed run then reshuffles.
        on_device: hold the training set on the device and gather full batches there
            (`preprocess.make_batches`); for models that augment inside the step.
        jit_compile: passed to `model.compile` (True compiles the step with XLA).
    """

    x: np.ndarray
    y: np.ndarray
    validation: tuple[np.ndarray, np.ndarray] | None = None
    augment: Augment | None = None
    in_memory: bool = False
    on_device: bool = False
    jit_compile: bool | str = "auto"

    def __post_init__(self) -> None:
        if self.in_memory and self.augment is not None:
            raise ValueError("in_memory training takes no augmentation: use the seeded batches")


@dataclass(frozen=True)
class RunOptions:
    """How a stage runs, apart from its recipe and data.

    Args:
        resume: continue from the last completed epoch found in the stage folder.
        callbacks: extra Keras callbacks (tests use one to slow epochs down).
        tensorboard: write TensorBoard logs (TensorFlow backend only).
    """

    resume: bool = False
    callbacks: Sequence[keras.callbacks.Callback] = ()
    tensorboard: bool = True


def _feed(data: StageData, config: TrainConfig, initial_epoch: int) -> tuple[dict[str, Any], int]:
    """What `model.fit` trains on, and the number of steps per epoch."""
    if data.in_memory:
        feed = dict(x=data.x, y=one_hot(data.y), batch_size=config.batch_size, shuffle=True)
        return feed, -(-len(data.x) // config.batch_size)
    batches = make_batches(
        data.x,
        one_hot(data.y),
        config.batch_size,
        config.seed,
        data.augment,
        config.workers,
        data.on_device,
    )
    batches.set_epoch(initial_epoch)
    # Our own seeded order, never Keras's reshuffle of the batches.
    return dict(x=batches, shuffle=False, callbacks=[BatchEpoch(batches)]), len(batches)


def _resume_point(stage_dir: Path, resume: bool) -> int:
    """The epochs already completed in `stage_dir` that a resumed run continues after (0 for
    a fresh start); refuses to overwrite training unless `resume` is set."""
    state = records.read_json(stage_dir / "state.json")
    if state is None:
        return 0
    if not resume:
        raise TrainingStateError(
            f"{stage_dir} already holds {state['completed_epochs']} trained epoch(s); pass "
            "RESUME=True to continue that run, or start a new run folder"
        )
    return int(state["completed_epochs"]) if (stage_dir / CHECKPOINT).exists() else 0


def _prepared(
    model: keras.Model,
    stage_dir: Path,
    data: StageData,
    config: TrainConfig,
    initial_epoch: int,
    steps_per_epoch: int,
) -> tuple[keras.Model, list[dict[str, float]]]:
    """The checkpointed model and its history when resuming, else `model` compiled afresh."""
    per_execution = min(steps_per_epoch, 64 if data.in_memory else config.steps_per_execution)
    history: list[dict[str, float]] = []
    if initial_epoch > 0:
        log.info("Resuming %s after epoch %d of %d", stage_dir.name, initial_epoch, config.epochs)
        history = records.read_json(stage_dir / "history.json", [])[:initial_epoch]
        if not _excludes_norm_and_bias(config):
            return load_checkpoint(stage_dir / CHECKPOINT), history
    compile_model(
        model,
        config,
        steps_per_epoch * config.epochs,
        steps_per_execution=per_execution,
        jit_compile=data.jit_compile,
    )
    if initial_epoch > 0:
        # A saved optimizer forgets which variables it spares from weight decay (Keras keeps
        # that out of its config): `model`, compiled afresh above, loads every variable, the
        # optimizer's included, from the checkpoint.
        model.optimizer.build(model.trainable_variables)
        model.load_weights(stage_dir / CHECKPOINT)
    return model, history


def _callbacks(
    stage_dir: Path,
    history: list[dict[str, float]],
    data: StageData,
    config: TrainConfig,
    run: RunOptions,
) -> list[keras.callbacks.Callback]:
    """Checkpointing, early stopping and TensorBoard as the recipe asks, then `run`'s own."""
    cbs: list[keras.callbacks.Callback] = [
        EpochCheckpoint(stage_dir, history, config.epochs, config.checkpoint_seconds)
    ]
    if config.early_stopping > 0 and data.validation is not None:
        cbs.append(
            keras.callbacks.EarlyStopping(
                patience=config.early_stopping, restore_best_weights=True, verbose=1
            )
        )
    if run.tensorboard and keras.backend.backend() == "tensorflow":
        cbs.append(keras.callbacks.TensorBoard(str(stage_dir / "tensorboard"), write_graph=False))
    return [*cbs, *run.callbacks]


def fit_stage(
    model: keras.Model,
    stage_dir: Path,
    data: StageData,
    config: TrainConfig,
    run: RunOptions | None = None,
) -> StageResult:
    """Train `model` on `data` for `config.epochs`, checkpointing each epoch into `stage_dir`.

    `model` is uncompiled; when `run.resume` finds a checkpoint it is replaced by it, and the
    run continues with the batches and augmentation it would have had. `stage_dir` must hold
    no training unless `run.resume` is set.

    Returns:
        The trained model, the full per-epoch history (no gaps) and the wall time.
    """
    run = run or RunOptions()
    stage_dir.mkdir(parents=True, exist_ok=True)
    initial_epoch = _resume_point(stage_dir, run.resume)
    feed, steps = _feed(data, config, initial_epoch)
    model, history = _prepared(model, stage_dir, data, config, initial_epoch, steps)
    if initial_epoch >= config.epochs:
        if config.ema > 0:  # killed after the last checkpoint, before fit swapped in the EMA
            model.optimizer.finalize_variable_values(model.trainable_variables)
        return StageResult(model, history, 0.0, resumed_from=initial_epoch)
    cbs = [*feed.pop("callbacks", []), *_callbacks(stage_dir, history, data, config, run)]
    val = (data.validation[0], one_hot(data.validation[1])) if data.validation is not None else None
    start = time.perf_counter()
    keras.utils.set_random_seed(config.seed + initial_epoch)
    model.fit(
        **feed,
        validation_data=val,
        validation_freq=config.validation_epochs(),
        epochs=config.epochs,
        initial_epoch=initial_epoch,
        callbacks=cbs,
        verbose=2,
    )
    stopped = len(history) < config.epochs
    return StageResult(
        model, history, time.perf_counter() - start, initial_epoch, stopped_early=stopped
    )


# --- frozen-backbone feature cache -------------------------------------------------


def array_digest(*arrays: np.ndarray) -> str:
    """A short SHA-256 digest of array bytes, shapes and dtypes."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def weights_digest(model: keras.Model) -> str:
    """Digest of a model's weights, so any change of weights changes the cache key."""
    return array_digest(*model.get_weights())


def features_signature(model: keras.Model) -> dict[str, Any]:
    """What, besides weights and images, decides a ResNet50 model's pooled features: the
    input layer's resize and normalisation, and the stem."""
    backbone = model.get_layer("resnet50")
    to_input = model.get_layer("resnet_input").get_config()
    return {
        "input": {k: v for k, v in to_input.items() if k not in ("name", "trainable")},
        "conv1_strides": list(backbone.get_layer("conv1_conv").strides),
        "pool1": type(backbone.get_layer("pool1_pool")).__name__,
    }


def stem_name(model: keras.Model) -> str:
    """`small` or `imagenet`, read from the built backbone."""
    return "imagenet" if features_signature(model)["pool1"] == "MaxPooling2D" else "small"


def pooled_features(
    model: keras.Model,
    images: np.ndarray,
    batch_size: int = 256,
    cache_dir: Path | None = None,
) -> tuple[np.ndarray, Path | None, bool]:
    """The ResNet50 model's global-average-pooled features, computed once and cached on disk.

    The cache key is the digest of (backbone weights, input resizing and normalisation,
    stem, images), so the same inputs never run through the same frozen backbone twice.
    Each writer saves to a temporary file of its own and renames it into place, so
    processes computing the same features at once never see a partial file; a sidecar
    written after the features are on disk (`write_cached_features`) lets a reader verify
    them, and an entry that fails (`read_cached_features`) is rebuilt, with a warning.

    Returns:
        `(features, cache_file, was_cached)`.
    """
    from fmnist_lib.models import feature_extractor

    cache_dir = cache_dir if cache_dir is not None else default_cache_dir() / "features"
    signature = json.dumps(features_signature(model), sort_keys=True)
    key = array_digest(
        np.frombuffer(weights_digest(model.get_layer("resnet50")).encode(), np.uint8),
        np.frombuffer(signature.encode(), np.uint8),
        np.asarray(images.shape),
        images,
    )
    size = features_signature(model)["input"]["image_size"]
    path = cache_dir / f"resnet50-{stem_name(model)}-{size}px-{key}.npy"
    if path.exists():
        cached, problem = read_cached_features(path, len(images))
        if cached is not None:
            return cached, path, True
        log.warning("fmnist: feature cache %s is damaged (%s); rebuilding it", path, problem)
    features = feature_extractor(model).predict(images, batch_size=batch_size, verbose=2)
    write_cached_features(path, features)
    return features, path, False


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def _fsynced(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def write_cached_features(path: Path, features: np.ndarray) -> None:
    """Save `features` to `path` (.npy) and then its sidecar (shape, dtype, SHA-256 of the
    file), each to a temporary file first, fsynced, then renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = path.parent / f".{path.stem}.{token}.tmp.npy"
    np.save(tmp, features)
    _fsynced(tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    os.replace(tmp, path)
    side = {"shape": list(features.shape), "dtype": str(features.dtype), "sha256": digest}
    tmp_side = path.parent / f".{path.stem}.{token}.tmp.json"
    tmp_side.write_text(json.dumps(side) + "\n")
    _fsynced(tmp_side)
    os.replace(tmp_side, _sidecar(path))
    fd = os.open(path.parent, os.O_RDONLY)  # the renames themselves reach the disk
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_cached_features(path: Path, n_images: int) -> tuple[np.ndarray | None, str]:
    """The cached features at `path` when they are whole: the sidecar's SHA-256 matches the
    file, and the array has its recorded shape and dtype with one row per image. Otherwise
    None and what is wrong."""
    try:
        side = json.loads(_sidecar(path).read_text())
        expected = (tuple(side["shape"]), str(side["dtype"]), str(side["sha256"]))
    except FileNotFoundError:
        return None, f"no {_sidecar(path).name} beside it (written by an older or killed run)"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"{_sidecar(path).name} unreadable: {exc}"
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, f"unreadable: {exc.strerror or exc}"
    if hashlib.sha256(raw).hexdigest() != expected[2]:
        return None, f"its SHA-256 is not the one recorded in {_sidecar(path).name}"
    try:
        features = np.load(io.BytesIO(raw), allow_pickle=False)
    except (OSError, ValueError) as exc:
        return None, f"not a NumPy array file: {exc}"
    if (features.shape, str(features.dtype)) != expected[:2] or len(features) != n_images:
        return None, f"shape {features.shape} {features.dtype}, expected {n_images} rows"
    return features, ""


# --- whole training runs -----------------------------------------------------------


@dataclass
class TrainResult:
    """The trained model and everything a report needs about how it was trained."""

    model: keras.Model
    stages: dict[str, list[dict[str, float]]]
    seconds: float
    feature_cache: dict[str, Any] = field(default_factory=dict)

    def history(self) -> list[dict[str, float]]:
        """All stages' epochs in order, numbered 0..n-1, each tagged with its stage."""
        rows = []
        for stage, hist in self.stages.items():
            for row in hist:
                rows.append({**row, "stage": stage, "epoch": len(rows)})
        return rows


def _validation(inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """The validation images and labels of `inputs`, or None when there are none."""
    return (inputs["x_val"], inputs["y_val"]) if len(inputs["y_val"]) else None


def train_head_on_features(
    model: keras.Model,
    inputs: dict[str, np.ndarray],
    stage_dir: Path,
    config: TrainConfig,
    run: RunOptions | None = None,
) -> tuple[StageResult, dict[str, Any]]:
    """The frozen-backbone stage: cache pooled features, train the head on them in memory."""
    start = time.perf_counter()
    feats, cache = {}, {}
    for part in ("train", "val"):
        feats[part], path, hit = pooled_features(model, inputs[f"x_{part}"])
        cache[part] = {"file": str(path), "cached": hit}
    cache["seconds"] = round(time.perf_counter() - start, 2)
    head = model.get_layer("head")
    val = (feats["val"], inputs["y_val"]) if len(inputs["y_val"]) else None
    # XLA on JAX; on TensorFlow op determinism (config.set_seeds) rules it out, and the head
    # is a few thousand weights on cached features, so plain graph mode is enough.
    data = StageData(feats["train"], inputs["y_train"], val, in_memory=True, jit_compile="auto")
    res = fit_stage(head, stage_dir, data, config, run)
    head.set_weights(res.model.get_weights())
    return res, cache


def fine_tune_top(
    model: keras.Model, data: StageData, stage_dir: Path, config: TrainConfig, run: RunOptions
) -> StageResult:
    """Unfreeze ResNet50's last stage and train it for `config.fine_tune_epochs` at a tenth
    of the learning rate."""
    from fmnist_lib.models import set_trainable

    set_trainable(model.get_layer("resnet50"), "top")
    top = replace(config, epochs=config.fine_tune_epochs, learning_rate=config.learning_rate / 10)
    return fit_stage(model, stage_dir, data, top, run)


def train_model(
    model: keras.Model,
    inputs: dict[str, np.ndarray],
    out_dir: Path,
    config: TrainConfig,
    *,
    fine_tune: str | None,
    augment: Augment | None = None,
    run: RunOptions | None = None,
) -> TrainResult:
    """Train any model; ResNet50 with a frozen backbone trains its head on cached features.

    `fine_tune` is the stage actually used (None for the baselines): `frozen` trains the
    head on features; `top` then unfreezes the last stage for `config.fine_tune_epochs` at a
    tenth of the learning rate; `full` trains everything end to end. ResNet50 models
    augment inside the model and train on batches held on the device; `augment` is the
    host augmentation of the baselines.
    """
    run = run or RunOptions()
    resnet = fine_tune is not None  # raw pixels in, augmentation inside the model
    images = StageData(
        inputs["x_train"],
        inputs["y_train"],
        _validation(inputs),
        augment=None if resnet else augment,
        on_device=resnet,
    )
    stages: dict[str, list[dict[str, float]]] = {}
    cache: dict[str, Any] = {}
    if fine_tune in ("frozen", "top"):
        res, cache = train_head_on_features(model, inputs, out_dir / "head", config, run)
        stages["head"], seconds = res.history, res.seconds + cache["seconds"]
        if fine_tune == "top" and config.fine_tune_epochs > 0:
            res = fine_tune_top(model, images, out_dir / "top", config, run)
            model, stages["top"], seconds = res.model, res.history, seconds + res.seconds
    else:
        res = fit_stage(model, out_dir / "main", images, config, run)
        model, stages["main"], seconds = res.model, res.history, res.seconds
    result = TrainResult(model, stages, seconds, cache)
    records.write_json(out_dir / "history.json", result.history())
    return result


def save_and_reload(model: keras.Model, path: Path) -> keras.Model:
    """Save as `.keras` and load it back with `safe_mode=True`, proving the file is usable."""
    model.save(path)
    return load_checkpoint(path)
