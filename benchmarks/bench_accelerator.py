"""Accelerator benchmarks for ResNet50 on Keras + JAX: throughput, latency, time to accuracy.

Usage (on the accelerator machine, KERAS_BACKEND=jax):
    python benchmarks/bench_accelerator.py throughput [--out DIR]
    python benchmarks/bench_accelerator.py recipe --name NAME [--image-size 32 --epochs 30 ...]

`throughput` times steady-state training and inference on synthetic 32x32 inputs (the speed
does not depend on pixel values). `recipe` trains ResNet50 from random initialisation on the
real training split with `fmnist_lib.train.train_model`, the code `03_training` runs, and
reports wall time (compilation included) and test accuracy; the test set is used only
after training. Each writes JSON (and the recipe its test probabilities) to --out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from fmnist_lib import data, distribute, evaluate, models, preprocess, records, train

ROOT = Path(__file__).resolve().parents[1]


class EpochTimer(keras.callbacks.Callback):
    """Wall seconds of each epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._t)


def resnet(image_size: int) -> keras.Model:
    """ResNet50 from random initialisation with the project's head, everything trainable."""
    return models.build_resnet50(image_size, "none", "full")[0]


def training_throughput(batch: int, spe: int, image_size: int = 32, steps: int = 60) -> dict:
    """Steady-state training images/s: median epoch after two warm-up epochs."""
    keras.utils.set_random_seed(0)
    model = resnet(image_size)
    train.compile_model(model, 1e-3, 10_000, steps_per_execution=spe)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch * steps, image_size, image_size, 3)).astype(np.float32)
    y = train.one_hot(rng.integers(0, 10, len(x)))
    timer = EpochTimer()
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=5, shuffle=False, verbose=0, callbacks=[timer])
    steady = statistics.median(timer.seconds[2:])
    return {
        "image_size": image_size,
        "batch_size": batch,
        "steps_per_execution": spe,
        "first_epoch_seconds_incl_compile": round(timer.seconds[0], 2),
        "steady_epoch_seconds": round(steady, 3),
        "train_images_per_s": round(len(x) / steady),
        "total_seconds": round(time.perf_counter() - t0, 1),
    }


def inference(image_size: int = 32) -> dict:
    """Inference throughput at batch 1024 and latency at batch 1 and 1024 (median of runs)."""
    keras.utils.set_random_seed(0)
    model = resnet(image_size)
    rng = np.random.default_rng(0)
    out = {"image_size": image_size}
    for batch, reps in ((1, 300), (1024, 50)):
        x = rng.normal(size=(batch, image_size, image_size, 3)).astype(np.float32)
        for _ in range(5):
            model.predict_on_batch(x)
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            model.predict_on_batch(x)  # returns NumPy: includes the copy back to the host
            times.append(time.perf_counter() - t)
        med = statistics.median(times)
        out[f"batch_{batch}"] = {
            "latency_ms_median": round(med * 1e3, 3),
            "latency_ms_p90": round(float(np.percentile(times, 90)) * 1e3, 3),
            "images_per_s": round(batch / med),
        }
    x = rng.normal(size=(65536, image_size, image_size, 3)).astype(np.float32)
    model.predict(x, batch_size=1024, verbose=0)
    t = time.perf_counter()
    model.predict(x, batch_size=1024, verbose=0)
    out["predict_65536_images_per_s"] = round(len(x) / (time.perf_counter() - t))
    return out


def run_recipe(args: argparse.Namespace, out: Path) -> dict:
    """Train ResNet50 on the real training split as `03_training` does; test at the end."""
    t_start = time.perf_counter()
    ds = data.load_fashion_mnist(allow_download=False)
    train_idx, val_idx = data.stratified_split(ds.y_train, 0.1, args.seed)
    if args.limit:  # a quick check of the script on a CPU
        train_idx = train_idx[data.subsample(ds.y_train[train_idx], args.limit, args.seed)]
    size = args.image_size
    x = {
        "x_train": preprocess.resnet_inputs(ds.x_train[train_idx], size),
        "y_train": ds.y_train[train_idx],
        "x_val": preprocess.resnet_inputs(ds.x_train[val_idx], size),
        "y_val": ds.y_train[val_idx],
    }
    x_test = preprocess.resnet_inputs(ds.x_test, size)
    prep_s = time.perf_counter() - t_start
    distribute.set_precision(args.precision)
    keras.utils.set_random_seed(args.seed)
    t_train = time.perf_counter()
    model = resnet(size)
    with tempfile.TemporaryDirectory() as tmp:
        result = train.train_model(
            model,
            x,
            Path(tmp),
            fine_tune="full",
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            seed=args.seed,
            augment=preprocess.parse_augment(args.augment),
            label_smoothing=args.label_smoothing,
            weight_decay=args.weight_decay,
            warmup_epochs=args.warmup_epochs,
            steps_per_execution=args.steps_per_execution,
            workers=args.workers,
        )
    train_s = time.perf_counter() - t_train
    proba = evaluate.predict(result.model, x_test, batch_size=1024)
    proba_tta = evaluate.predict(result.model, x_test, tta=True, batch_size=1024)
    np.save(out / f"proba_{args.name}.npy", proba_tta.astype(np.float32))
    hist = result.history()
    elapsed = np.cumsum([r["seconds"] for r in hist])
    row = {
        "name": args.name,
        "recipe": {k: v for k, v in vars(args).items() if k not in ("command", "out")},
        "train_images": int(len(train_idx)),
        "preprocess_seconds": round(prep_s, 1),
        "train_wall_seconds_incl_compile": round(train_s, 1),
        "first_epoch_seconds": hist[0]["seconds"],
        "test_accuracy": evaluate.summary(ds.y_test, proba)["accuracy"],
        "test_accuracy_tta": evaluate.summary(ds.y_test, proba_tta)["accuracy"],
        "val_accuracy_by_epoch": [round(r.get("val_accuracy", float("nan")), 4) for r in hist],
        "seconds_by_epoch": [round(float(s), 1) for s in elapsed],
    }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("throughput", "recipe"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--name", default="recipe")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--warmup-epochs", type=int, default=2)
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--augment", default="flip+shift")
    parser.add_argument("--precision", default="mixed_bfloat16")
    parser.add_argument("--steps-per-execution", type=int, default=1)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--limit", type=int, default=0, help="train on this many images only")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = {
        "machine": records.describe_device(),
        "versions": records.package_versions(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python benchmarks/bench_accelerator.py " + " ".join(__import__("sys").argv[1:]),
    }
    if args.command == "throughput":
        distribute.set_precision(args.precision)
        result = {
            "benchmark": "ResNet50 training and inference throughput (synthetic inputs)",
            "precision": args.precision,
            "training": [
                training_throughput(b, spe) for b, spe in ((256, 1), (512, 1), (1024, 1), (512, 8))
            ],
            "inference": inference(),
            **stamp,
        }
        name = "accelerator_throughput.json"
    else:
        result = {"benchmark": "ResNet50 time to accuracy", **run_recipe(args, args.out), **stamp}
        name = f"accelerator_recipe_{args.name}.json"
    (args.out / name).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2), flush=True)


if __name__ == "__main__":
    main()
