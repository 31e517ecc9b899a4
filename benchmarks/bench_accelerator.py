"""Accelerator benchmarks for ResNet50 on Keras + JAX: time to accuracy and throughput.

Usage (on the accelerator machine, KERAS_BACKEND=jax):
    python benchmarks/bench_accelerator.py recipe --name NAME [--stem small --epochs 30 ...]
    python benchmarks/bench_accelerator.py throughput [--batch-size 512 ...]

`recipe` trains ResNet50 from random initialisation on the real training split (54,000
images; 6,000 held out for validation) with `fmnist_lib.train.train_model`, the code
`03_training` runs: raw uint8 batches held on the device, augmentation and resizing inside the
compiled step. It reports the training wall time (model build, compilation, every epoch and
its checkpoints; cold unless the JAX compilation cache is on), then the validation accuracy
(to choose recipes) and, once, the test accuracy with and without flip TTA.

`throughput` times steady-state training images/s of the same model three ways: real images
with the augmentation on, synthetic images with it on, and synthetic images with no
augmentation layer; the first against the last is the cost of the input pipeline.

With several GPUs visible, `distribute.data_parallel` splits each batch over all of them.
Each command writes one JSON file (the recipe also its test probabilities) to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import keras
import numpy as np
import stamp

from fmnist_lib import data, distribute, evaluate, models, preprocess, train

ROOT = Path(__file__).resolve().parents[1]


def spec_of(args: argparse.Namespace, augment: str | None = None) -> models.ResNetSpec:
    """The ResNet50 the arguments describe, from random initialisation, fully trained."""
    return models.ResNetSpec(
        image_size=args.image_size,
        weights="none",
        fine_tune="full",
        stem=args.stem,
        bn_momentum=args.bn_momentum,
        zero_init_residual=args.zero_init_residual,
        augment=args.augment if augment is None else augment,
        seed=args.seed,
    )


def recipe_of(args: argparse.Namespace, epochs: int | None = None) -> train.TrainConfig:
    """The recipe the arguments describe, named as `03_training`'s parameters are
    (`--batch-size` is BATCH_SIZE); `epochs` overrides `--epochs`."""
    params = {k.upper(): v for k, v in vars(args).items()}
    params["VAL_EVERY"] = params.get("VAL_EVERY") or 1  # 0: no validation in the loop at all
    recipe = train.TrainConfig.from_parameters(params)
    return recipe if epochs is None else replace(recipe, epochs=epochs)


def run_recipe(args: argparse.Namespace, out: Path) -> dict:
    """Train on the training split as `03_training` does; validate, then test once."""
    t0 = time.perf_counter()
    ds = data.load_fashion_mnist(allow_download=False)
    train_idx, val_idx = data.stratified_split(ds.y_train, 0.1, args.seed)
    test_idx = np.arange(len(ds.y_test))
    if args.limit:  # a quick check of the script on a CPU
        train_idx = train_idx[data.subsample(ds.y_train[train_idx], args.limit, args.seed)]
        val_idx, test_idx = val_idx[: args.limit // 4], test_idx[: args.limit // 4]
    standardizer = preprocess.Standardizer.fit(ds.x_train[train_idx])
    # Validated after training unless --val-every asks for it in the loop too (as the gpu
    # profile's VAL_EVERY did before issue 21): then its cost shows in the overhead.
    in_loop = val_idx if args.val_every else np.zeros((0,), np.int64)
    inputs = {
        "x_train": ds.x_train[train_idx][..., None],
        "y_train": ds.y_train[train_idx],
        "x_val": ds.x_train[in_loop][..., None],
        "y_val": ds.y_train[in_loop],
    }
    load_s = time.perf_counter() - t0
    distribute.set_precision(args.precision)
    parallel = distribute.data_parallel(args.batch_size)
    cache = distribute.compilation_cache(args.compilation_cache or None)
    keras.utils.set_random_seed(args.seed)
    t_train = time.perf_counter()
    model, choice = models.build_model("resnet50", spec_of(args), standardizer)
    build_s = time.perf_counter() - t_train
    with tempfile.TemporaryDirectory() as tmp:
        result = train.train_model(model, inputs, Path(tmp), recipe_of(args), fine_tune="full")
    train_s = time.perf_counter() - t_train
    # One inference function at one batch shape (1000 divides 6,000 and 10,000): a single
    # compilation serves validation, every TTA view and the test set.
    t_eval = time.perf_counter()
    x_val, y_val = ds.x_train[val_idx][..., None], ds.y_train[val_idx]
    first = evaluate.predict(result.model, x_val[:1000], batch_size=1000)
    eval_compile_s = time.perf_counter() - t_eval
    del first
    x_test, y_test = ds.x_test[test_idx][..., None], ds.y_test[test_idx]
    val_p, test_p = {}, {}  # TTA mode -> probabilities
    for mode, fn in TTA_MODES.items():
        val_p[mode] = fn(result.model, x_val)
    for mode, fn in TTA_MODES.items():  # the test set, once, after every choice is made
        test_p[mode] = fn(result.model, x_test)
    eval_s = time.perf_counter() - t_eval
    val_acc = {m: evaluate.summary(y_val, p)["accuracy"] for m, p in val_p.items()}
    test_acc = {m: evaluate.summary(y_test, p)["accuracy"] for m, p in test_p.items()}
    np.savez_compressed(
        out / f"proba_{args.name}.npz",
        **{f"proba_{m}": p.astype(np.float16) for m, p in test_p.items() if m != "none"},
    )
    hist = result.history()
    steady = statistics.median(r["seconds"] for r in hist[1:])
    validated = set(recipe_of(args).validation_epochs()) if args.val_every else set()
    return {
        "name": args.name,
        "recipe": {k: v for k, v in vars(args).items() if k not in ("command", "out")},
        "train_config": asdict(recipe_of(args)),
        "resnet_spec": asdict(spec_of(args)),
        "weights": choice.label,
        "devices": len(parallel["devices"]),
        "distribution": parallel["distribution"],
        "train_images": int(len(train_idx)),
        "load_seconds": round(load_s, 1),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "compilation_cache": cache,
        "cache_state": "warm" if cache and args.cache_was_warm else "cold",
        "train_wall_seconds_incl_compile": round(train_s, 1),
        "first_epoch_seconds_incl_compile": hist[0]["seconds"],
        "median_epoch_seconds": round(steady, 3),
        "checkpoint_seconds_total": round(sum(r.get("checkpoint_seconds", 0) for r in hist), 1),
        "overhead": {
            "build_seconds": round(build_s, 1),
            "compile_seconds": round(hist[0]["seconds"] - steady, 1),
            "validation_seconds": round(
                sum(r["seconds"] - steady for r in hist[1:] if r["epoch"] + 1 in validated), 1
            ),
            "checkpoint_seconds": round(sum(r.get("checkpoint_seconds", 0) for r in hist), 1),
            "fixed_seconds": round(train_s - len(hist) * steady, 1),
        },
        "eval_compile_seconds": round(eval_compile_s, 1),
        "train_images_per_s_steady": round(
            len(train_idx)
            // args.batch_size
            * args.batch_size
            / statistics.median(r["seconds"] for r in hist[1:])
        ),
        "eval_seconds": round(eval_s, 1),
        "val_accuracy": val_acc["none"],
        "val_accuracy_tta": val_acc["flip"],
        "val_accuracy_by_tta": val_acc,
        "test_images": int(len(test_idx)),
        "test_accuracy": test_acc["none"],
        "test_accuracy_tta": test_acc["flip"],
        "test_accuracy_by_tta": test_acc,
        "train_loss_by_epoch": [round(r["loss"], 4) for r in hist],
        "seconds_by_epoch": [round(r["seconds"], 2) for r in hist],
    }


TTA_MODES = {
    "none": lambda model, x: evaluate.predict(model, x, batch_size=1000),
    "flip": lambda model, x: evaluate.predict(model, x, tta=True, batch_size=1000),
    "flip+shift1": lambda model, x: evaluate.predict_views(model, x, 1, batch_size=1000),
}


class EpochTimer(keras.callbacks.Callback):
    """Wall seconds of each epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._t)


def steady_images_per_s(args: argparse.Namespace, images: np.ndarray, augment: str) -> dict:
    """Median epoch of `fit` over device-held batches, after two warm-up epochs."""
    keras.utils.set_random_seed(args.seed)
    model, _ = models.build_model("resnet50", spec_of(args, augment))
    recipe = recipe_of(args, epochs=6)
    batches = preprocess.make_batches(
        images, train.one_hot(np.arange(len(images)) % 10), args.batch_size, 0, on_device=True
    )
    train.compile_model(model, recipe, len(batches) * recipe.epochs)
    timer = EpochTimer()
    model.fit(batches, epochs=recipe.epochs, shuffle=False, verbose=0, callbacks=[timer])
    steady = statistics.median(timer.seconds[2:])
    return {
        "augment": augment,
        "first_epoch_seconds_incl_compile": round(timer.seconds[0], 2),
        "steady_epoch_seconds": round(steady, 3),
        "train_images_per_s": round(len(batches) * args.batch_size / steady),
    }


def run_throughput(args: argparse.Namespace) -> dict:
    """Real images with augmentation, synthetic with and without it: the same model."""
    distribute.set_precision(args.precision)
    parallel = distribute.data_parallel(args.batch_size)
    n = args.batch_size * args.steps
    ds = data.load_fashion_mnist(allow_download=False)
    real = ds.x_train[:n][..., None]
    synthetic = np.random.default_rng(0).integers(0, 256, real.shape, dtype=np.uint8)
    cases = {"real images, augmentation on": steady_images_per_s(args, real, args.augment)}
    ratio = None
    if args.cases == "all":
        cases["synthetic images, augmentation on"] = steady_images_per_s(
            args, synthetic, args.augment
        )
        cases["synthetic images, no augmentation layer"] = steady_images_per_s(
            args, synthetic, "none"
        )
        ratio = round(
            cases["real images, augmentation on"]["train_images_per_s"]
            / cases["synthetic images, no augmentation layer"]["train_images_per_s"],
            3,
        )
    return {
        "benchmark": "ResNet50 training throughput: input pipeline against synthetic inputs",
        "resnet_spec": asdict(spec_of(args)),
        "batch_size": args.batch_size,
        "steps_per_epoch": args.steps,
        "precision": args.precision,
        "devices": len(parallel["devices"]),
        "distribution": parallel["distribution"],
        "cases": cases,
        "augmented_over_synthetic": ratio,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("recipe", "throughput"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--name", default="recipe")
    parser.add_argument("--stem", default="small", choices=models.STEMS)
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--optimizer", default="sgd", choices=train.OPTIMIZERS)
    parser.add_argument("--learning-rate", type=float, default=0.2)
    parser.add_argument("--weight-decay", type=float, default=5e-3)
    parser.add_argument(
        "--decay-norm-and-bias", action=argparse.BooleanOptionalAction, default=True
    )
    parser.add_argument("--warmup-epochs", type=int, default=2)
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--ema", type=float, default=0.0)
    parser.add_argument("--bn-momentum", type=float, default=0.9)
    parser.add_argument("--zero-init-residual", action="store_true")
    parser.add_argument("--augment", default="flip+shift:4+cutout:12")
    parser.add_argument("--precision", default="mixed_bfloat16")
    parser.add_argument("--checkpoint-seconds", type=float, default=60.0)
    parser.add_argument("--val-every", type=int, default=0, help="validate in the loop too")
    parser.add_argument("--compilation-cache", default="", help="JAX cache folder (opt-in)")
    parser.add_argument("--steps", type=int, default=40, help="throughput: steps per epoch")
    parser.add_argument("--cases", default="all", choices=("all", "real"), help="throughput")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--limit", type=int, default=0, help="train on this many images only")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    args.cache_was_warm = bool(args.compilation_cache) and any(
        Path(args.compilation_cache).glob("*")
    )
    load_before = list(os.getloadavg())
    if args.command == "throughput":
        result = stamp.measured(run_throughput(args), load_before)
        name = f"throughput_{args.name}.json"
    else:
        recipe = {"benchmark": "ResNet50 time to accuracy", **run_recipe(args, args.out)}
        result = stamp.measured(recipe, load_before)
        name = f"recipe_{args.name}.json"
    (args.out / name).write_text(json.dumps(result, indent=2) + "\n")
    summary = {k: v for k, v in result.items() if not isinstance(v, dict | list)}
    print(json.dumps(summary, indent=1), flush=True)


if __name__ == "__main__":
    main()
