"""Frozen-backbone feature cache: time per epoch with and without it, on this machine's CPU.

Usage: python benchmarks/bench_feature_cache.py [N_IMAGES]

Times training epochs of ResNet50 (frozen backbone, BN/Dense head) run end to end, against
epochs of the same head on cached pooled features, and the one-off extraction, at 32x32 and
64x64 inputs. The speed-up is bounded by the ratio of the backbone's forward cost to the
head's own training cost, so it grows with the input size. Then the feature extraction rate
of each stem (imagenet, small) and the time it projects for the 60,000 images of the default
profile's frozen ResNet50 (54,000 training and 6,000 validation).
Writes benchmarks/results/feature_cache.json with the machine it was measured on.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import stamp

from fmnist_lib import data, models, preprocess, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LOOP_EPOCHS = 4  # 10-40 s each here
HEAD_EPOCHS = 8  # XLA compiles in epoch 1 and settles in epoch 2


def frozen_model(size: int, stem: str = "imagenet") -> keras.Model:
    """The default profile's ResNet50: frozen random backbone, raw pixels in."""
    keras.utils.set_random_seed(0)
    spec = models.ResNetSpec(size, "none", "frozen", stem)
    return models.build_resnet50(spec, preprocess.Standardizer(0.286, 0.353))[0]


def measure(ds: data.FashionMNIST, n: int, size: int) -> dict:
    """Per-epoch seconds in the loop and on cached features, at one input size."""
    idx = data.subsample(ds.y_train, n, seed=0)
    x, y = ds.x_train[idx][..., None], ds.y_train[idx]
    full = frozen_model(size)
    recipe = train.TrainConfig(batch_size=64, learning_rate=1e-3, seed=0)
    quiet = train.RunOptions(tensorboard=False)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FMNIST_CACHE_DIR"] = tmp
        t = time.perf_counter()
        feats, _, _ = train.pooled_features(full, x)
        extract = time.perf_counter() - t
        # Early epochs include tracing and compilation: medians of later epochs are steady.
        loop = train.fit_stage(
            full,
            Path(tmp) / "loop",
            train.StageData(x, y, in_memory=True),
            replace(recipe, epochs=LOOP_EPOCHS),
            quiet,
        )
        # The head trains exactly as train_model trains it on cached features.
        head_only = train.fit_stage(
            models.build_head(),
            Path(tmp) / "head",
            train.StageData(feats, y, in_memory=True, jit_compile=True),
            replace(recipe, epochs=HEAD_EPOCHS),
            quiet,
        )
    in_loop_s = statistics.median(r["seconds"] for r in loop.history[1:])
    head_s = statistics.median(r["seconds"] for r in head_only.history[2:])
    return {
        "image_size": size,
        "in_loop_epoch_seconds": in_loop_s,
        "cached_head_epoch_seconds": head_s,
        "speedup_per_epoch": round(in_loop_s / head_s, 1),
        "one_off_extraction_seconds": round(extract, 2),
    }


def extraction_rate(ds: data.FashionMNIST, n: int, size: int, stem: str) -> dict:
    """Pooled-feature extraction images/s (after a warm-up batch), and 60,000 images' time."""
    x = ds.x_train[:n][..., None]
    extractor = models.feature_extractor(frozen_model(size, stem))
    extractor.predict(x[:256], batch_size=256, verbose=0)  # trace and compile
    t = time.perf_counter()
    extractor.predict(x, batch_size=256, verbose=0)
    rate = n / (time.perf_counter() - t)
    return {
        "stem": stem,
        "image_size": size,
        "images": n,
        "images_per_s": round(rate, 1),
        "projected_seconds_60000": round(60_000 / rate),
    }


def main(n: int = 1024, sizes: tuple[int, ...] = (32, 64)) -> dict:
    ds = data.load_fashion_mnist()
    load_before = list(os.getloadavg())
    result = {
        "benchmark": "ResNet50 frozen backbone: epoch end to end vs head on cached features",
        "images": int(n),
        "batch_size": 64,
        "steady_state": f"median of in-loop epochs 2-{LOOP_EPOCHS}, head epochs 3-{HEAD_EPOCHS}",
        "sizes": [measure(ds, n, size) for size in sizes],
        "extraction": [
            extraction_rate(ds, 1024, 32, "imagenet"),
            extraction_rate(ds, 512, 32, "small"),
            extraction_rate(ds, 512, 28, "small"),
        ],
    }
    result = stamp.measured(result, load_before)
    stamp.save("feature_cache", result)
    return result


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1024)
