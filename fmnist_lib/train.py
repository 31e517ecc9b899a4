"""Training: per-epoch checkpoints, resumable stages, history, and the frozen-feature cache.

Each stage (`main`, `head`, `top`) trains in its own folder under the model folder:
`checkpoint.keras` and `state.json` are replaced atomically after every epoch and
`history.json` grows by one row, so a killed run resumes from its last completed epoch.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from fmnist_lib import config, records
from fmnist_lib.data import NUM_CLASSES
from fmnist_lib.preprocess import Augment, make_batches

CHECKPOINT = "checkpoint.keras"


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


class EpochCheckpoint(keras.callbacks.Callback):
    """After every epoch: save the model, then append to `history.json`, then `state.json`."""

    def __init__(self, stage_dir: Path, history: list[dict[str, float]], epochs: int) -> None:
        super().__init__()
        self.stage_dir = stage_dir
        self.history = history
        self.epochs = epochs
        self._start = time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        row = {"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}}
        row["seconds"] = round(time.perf_counter() - self._start, 3)
        tmp = self.stage_dir / f".tmp-{CHECKPOINT}"
        self.model.save(tmp)
        tmp.replace(self.stage_dir / CHECKPOINT)
        self.history.append(row)
        records.write_json(self.stage_dir / "history.json", self.history)
        records.write_json(
            self.stage_dir / "state.json", {"completed_epochs": epoch + 1, "epochs": self.epochs}
        )


def model_dir(run_dir: Path, model: str, *, scratch: bool = False) -> Path:
    """The model's folder in the run. With `scratch` (the interactive folder, not resuming),
    training left there by an earlier session is cleared so the notebook can be re-run."""
    path = Path(run_dir) / "models" / model
    if scratch and path.exists():
        import shutil

        shutil.rmtree(path)
        print(f"cleared earlier interactive training in {path}")
    path.mkdir(parents=True, exist_ok=True)
    return path


def one_hot(labels: np.ndarray) -> np.ndarray:
    """Integer labels -> one-hot float32, for categorical cross-entropy."""
    return keras.utils.to_categorical(labels, NUM_CLASSES).astype(np.float32)


def compile_model(
    model: keras.Model,
    learning_rate: float,
    total_steps: int,
    label_smoothing: float = 0.0,
    schedule: str = "cosine",
    *,
    weight_decay: float = 0.0,
    warmup_steps: int = 0,
    steps_per_execution: int = 1,
    jit_compile: bool | str = "auto",
) -> None:
    """Adam (AdamW when `weight_decay` > 0) with categorical cross-entropy.

    The learning rate warms up linearly for `warmup_steps`, then follows a cosine decay.
    """
    lr: Any = learning_rate
    if schedule == "cosine" and total_steps > 0:
        warmup = min(warmup_steps, total_steps - 1)
        lr = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else learning_rate,
            total_steps - warmup,
            alpha=0.01,
            warmup_target=learning_rate if warmup else None,
            warmup_steps=warmup,
        )
    optimizer = (
        keras.optimizers.AdamW(lr, weight_decay=weight_decay)
        if weight_decay > 0
        else keras.optimizers.Adam(lr)
    )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
    )


def load_checkpoint(path: Path) -> keras.Model:
    """Load a `.keras` file with `safe_mode=True` (no arbitrary code)."""
    return keras.saving.load_model(path, safe_mode=True)


def fit_stage(
    model: keras.Model,
    stage_dir: Path,
    x: np.ndarray,
    y: np.ndarray,
    validation: tuple[np.ndarray, np.ndarray] | None,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    resume: bool = False,
    augment: Augment | None = None,
    early_stopping: int = 0,
    label_smoothing: float = 0.0,
    callbacks: list[keras.callbacks.Callback] | None = None,
    tensorboard: bool = True,
    in_memory: bool = False,
    jit_compile: bool | str = "auto",
    weight_decay: float = 0.0,
    warmup_epochs: int = 0,
    steps_per_execution: int = 1,
    workers: int = 1,
) -> StageResult:
    """Train `model` for `epochs`, checkpointing each epoch into `stage_dir`.

    Args:
        model: an uncompiled model; replaced by the checkpoint when resuming.
        stage_dir: this stage's folder; it must be empty unless `resume` is set.
        x, y: training images and integer labels.
        validation: optional (images, integer labels).
        resume: continue from the last completed epoch found in `stage_dir`.
        augment: NumPy augmentation applied to each training batch.
        early_stopping: patience in epochs on validation loss; 0 disables it.
        callbacks: extra Keras callbacks (tests use one to slow epochs down).
        in_memory: small inputs without augmentation (the head on cached features): pass
            the arrays to Keras, shuffled by Keras from the seed, and run up to 64 steps
            per execution. Saves the per-batch Python round trip of the seeded dataset,
            which dominates a head epoch on the CPU; a resumed run then reshuffles.
        jit_compile: passed to `model.compile` (True compiles the step with XLA).
        weight_decay: decoupled weight decay (AdamW); 0 keeps plain Adam.
        warmup_epochs: linear learning-rate warm-up before the cosine decay.
        steps_per_execution: training steps per compiled call (fewer host round trips).
        workers: threads preparing augmented batches (accelerators need more than one).

    Returns:
        The trained model, the full per-epoch history (no gaps) and the wall time.
    """
    stage_dir.mkdir(parents=True, exist_ok=True)
    state = records.read_json(stage_dir / "state.json")
    history: list[dict[str, float]] = []
    initial_epoch = 0
    if state is not None and not resume:
        raise TrainingStateError(
            f"{stage_dir} already holds {state['completed_epochs']} trained epoch(s); pass "
            "RESUME=True to continue that run, or start a new run folder"
        )
    if in_memory and augment is not None:
        raise ValueError("in_memory training takes no augmentation: use the seeded batches")
    steps_per_epoch = -(-len(x) // batch_size)
    per_execution = min(steps_per_epoch, 64 if in_memory else steps_per_execution)
    if state is not None and (stage_dir / CHECKPOINT).exists():
        initial_epoch = int(state["completed_epochs"])
        history = records.read_json(stage_dir / "history.json", [])[:initial_epoch]
        model = load_checkpoint(stage_dir / CHECKPOINT)
        print(f"Resuming {stage_dir.name} after epoch {initial_epoch} of {epochs}", flush=True)
    else:
        compile_model(
            model,
            learning_rate,
            steps_per_epoch * epochs,
            label_smoothing,
            weight_decay=weight_decay,
            warmup_steps=steps_per_epoch * warmup_epochs,
            steps_per_execution=per_execution,
            jit_compile=jit_compile,
        )
    if initial_epoch >= epochs:
        return StageResult(model, history, 0.0, resumed_from=initial_epoch)

    if in_memory:
        data: dict[str, Any] = dict(x=x, y=one_hot(y), batch_size=batch_size, shuffle=True)
    else:
        batches = make_batches(x, one_hot(y), batch_size, seed, augment, workers=workers)
        batches.set_epoch(initial_epoch)
        data = dict(x=batches)
    cbs: list[keras.callbacks.Callback] = [EpochCheckpoint(stage_dir, history, epochs)]
    if early_stopping > 0 and validation is not None:
        cbs.append(
            keras.callbacks.EarlyStopping(
                patience=early_stopping, restore_best_weights=True, verbose=1
            )
        )
    if tensorboard and keras.backend.backend() == "tensorflow":
        cbs.append(keras.callbacks.TensorBoard(str(stage_dir / "tensorboard"), write_graph=False))
    cbs.extend(callbacks or [])
    val = (validation[0], one_hot(validation[1])) if validation is not None else None
    start = time.perf_counter()
    keras.utils.set_random_seed(seed + initial_epoch)
    model.fit(
        **data,
        validation_data=val,
        epochs=epochs,
        initial_epoch=initial_epoch,
        callbacks=cbs,
        verbose=2,
    )
    stopped = len(history) < epochs
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


def weights_digest(backbone: keras.Model) -> str:
    """Digest of the backbone's weights, so any change of weights changes the cache key."""
    return array_digest(*backbone.get_weights())


def pooled_features(
    backbone: keras.Model,
    images: np.ndarray,
    batch_size: int = 256,
    cache_dir: Path | None = None,
) -> tuple[np.ndarray, Path | None, bool]:
    """Global-average-pooled backbone features, computed once and cached on disk.

    The cache key is the digest of (weights, input size, images), so the same inputs and
    weights never run through the frozen backbone twice.

    Returns:
        `(features, cache_file, was_cached)`.
    """
    cache_dir = cache_dir if cache_dir is not None else config.cache_dir() / "features"
    key = array_digest(
        np.frombuffer(weights_digest(backbone).encode(), np.uint8),
        np.asarray(images.shape),
        images,
    )
    path = cache_dir / f"resnet50-{images.shape[1]}px-{key}.npy"
    if path.exists():
        return np.load(path), path, True
    extractor = keras.Sequential([backbone, keras.layers.GlobalAveragePooling2D()])
    features = extractor.predict(images, batch_size=batch_size, verbose=2)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, features)
    tmp.replace(path)
    return features, path, False


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


def train_model(
    model: keras.Model,
    inputs: dict[str, np.ndarray],
    out_dir: Path,
    *,
    fine_tune: str | None,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    fine_tune_epochs: int = 0,
    resume: bool = False,
    augment: Augment | None = None,
    early_stopping: int = 0,
    label_smoothing: float = 0.0,
    callbacks: list[keras.callbacks.Callback] | None = None,
    **options: Any,
) -> TrainResult:
    """Train any model; ResNet50 with a frozen backbone trains its head on cached features.

    `fine_tune` is the stage actually used (None for the baselines): `frozen` trains the
    head on features; `top` then unfreezes the last stage for `fine_tune_epochs` at a
    tenth of the learning rate; `full` trains everything end to end. `options`
    (`weight_decay`, `warmup_epochs`, `steps_per_execution`, `workers`) go to `fit_stage`
    for the stages that train on images.
    """
    common = dict(
        batch_size=batch_size,
        seed=seed,
        resume=resume,
        callbacks=callbacks,
        early_stopping=early_stopping,
        label_smoothing=label_smoothing,
    )
    val = (inputs["x_val"], inputs["y_val"]) if len(inputs["y_val"]) else None
    stages: dict[str, list[dict[str, float]]] = {}
    seconds = 0.0
    cache: dict[str, Any] = {}
    if fine_tune in ("frozen", "top"):
        from fmnist_lib.models import set_trainable

        backbone, head = model.get_layer("resnet50"), model.get_layer("head")
        start = time.perf_counter()
        feats = {}
        for part in ("train", "val"):
            feats[part], path, hit = pooled_features(backbone, inputs[f"x_{part}"])
            cache[part] = {"file": str(path), "cached": hit}
        cache["seconds"] = round(time.perf_counter() - start, 2)
        head_val = (feats["val"], inputs["y_val"]) if val is not None else None
        res = fit_stage(
            head,
            out_dir / "head",
            feats["train"],
            inputs["y_train"],
            head_val,
            epochs=epochs,
            learning_rate=learning_rate,
            in_memory=True,
            jit_compile=keras.backend.backend() in ("tensorflow", "jax"),
            **common,
        )
        head.set_weights(res.model.get_weights())
        stages["head"], seconds = res.history, seconds + res.seconds + cache["seconds"]
        if fine_tune == "top" and fine_tune_epochs > 0:
            set_trainable(backbone, "top")
            res = fit_stage(
                model,
                out_dir / "top",
                inputs["x_train"],
                inputs["y_train"],
                val,
                epochs=fine_tune_epochs,
                learning_rate=learning_rate / 10,
                augment=augment,
                **common,
                **options,
            )
            model, stages["top"], seconds = res.model, res.history, seconds + res.seconds
    else:
        res = fit_stage(
            model,
            out_dir / "main",
            inputs["x_train"],
            inputs["y_train"],
            val,
            epochs=epochs,
            learning_rate=learning_rate,
            augment=augment,
            **common,
            **options,
        )
        model, stages["main"], seconds = res.model, res.history, res.seconds
    result = TrainResult(model, stages, seconds, cache)
    records.write_json(out_dir / "history.json", result.history())
    return result


def save_and_reload(model: keras.Model, path: Path) -> keras.Model:
    """Save as `.keras` and load it back with `safe_mode=True`, proving the file is usable."""
    model.save(path)
    return load_checkpoint(path)
