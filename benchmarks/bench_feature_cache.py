"""Frozen-backbone feature cache: time per epoch with and without it, on this machine's CPU.

Usage: python benchmarks/bench_feature_cache.py [N_IMAGES]

Times training epochs of ResNet50 (frozen backbone, BN/Dense head) run end to end, against
epochs of the same head on cached pooled features, and the one-off extraction, at 32x32 and
64x64 inputs. The speed-up is bounded by the ratio of the backbone's forward cost to the
head's own training cost, so it grows with the input size.
Writes benchmarks/results/feature_cache.json with the machine it was measured on.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from fmnist_lib import data, models, preprocess, records, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LOOP_EPOCHS = 4  # 10-40 s each here
HEAD_EPOCHS = 8  # XLA compiles in epoch 1 and settles in epoch 2


def measure(ds: data.FashionMNIST, n: int, size: int) -> dict:
    """Per-epoch seconds in the loop and on cached features, at one input size."""
    idx = data.subsample(ds.y_train, n, seed=0)
    x, y = preprocess.resnet_inputs(ds.x_train[idx], size), ds.y_train[idx]
    keras.utils.set_random_seed(0)
    backbone = keras.applications.ResNet50(
        include_top=False, weights=None, input_shape=(size, size, 3)
    )
    backbone.trainable = False
    head = models.build_head()
    inputs = keras.Input((size, size, 3))
    full = keras.Model(inputs, head(keras.layers.GlobalAveragePooling2D()(backbone(inputs))))
    kw = dict(batch_size=64, learning_rate=1e-3, seed=0, tensorboard=False)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FMNIST_CACHE_DIR"] = tmp
        t = time.perf_counter()
        feats, _, _ = train.pooled_features(backbone, x)
        extract = time.perf_counter() - t
        # Early epochs include tracing and compilation: medians of later epochs are steady.
        loop = train.fit_stage(full, Path(tmp) / "loop", x, y, None, epochs=LOOP_EPOCHS, **kw)
        # The head trains exactly as train_model trains it on cached features.
        head_only = train.fit_stage(
            models.build_head(),
            Path(tmp) / "head",
            feats,
            y,
            None,
            epochs=HEAD_EPOCHS,
            in_memory=True,
            jit_compile=True,
            **kw,
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


def main(n: int = 1024, sizes: tuple[int, ...] = (32, 64)) -> dict:
    ds = data.load_fashion_mnist()
    result = {
        "benchmark": "ResNet50 frozen backbone: epoch end to end vs head on cached features",
        "images": int(n),
        "batch_size": 64,
        "steady_state": f"median of in-loop epochs 2-{LOOP_EPOCHS}, head epochs 3-{HEAD_EPOCHS}",
        "sizes": [measure(ds, n, size) for size in sizes],
        "machine": records.describe_device(),
        "date": dt.date.today().isoformat(),
        "command": "python benchmarks/bench_feature_cache.py " + str(n),
    }
    out = ROOT / "benchmarks" / "results" / "feature_cache.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1024)
