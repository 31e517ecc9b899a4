"""CPU training throughput per Keras backend: steady-state images/s of the CNN and ResNet50.

Usage: python benchmarks/bench_cpu_training.py
Runs one child process per backend (TensorFlow, JAX), each timing `fmnist_lib.train.fit_stage`
epochs on real images; the median of the epochs after the first is the steady state.
Writes benchmarks/results/cpu_training.json with the machine it was measured on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import stamp

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, statistics, sys, tempfile
from pathlib import Path
import keras
from fmnist_lib import data, models, preprocess, train
ds = data.load_fashion_mnist(allow_download=False)
out = []
cases = [("cnn", 6400, 128, 3), ("resnet50_32px_full", 256, 64, 3)]
for name, n, batch, epochs in cases:
    keras.utils.set_random_seed(0)
    recipe = train.TrainConfig(epochs=epochs, batch_size=batch, learning_rate=1e-3, seed=0)
    if name == "cnn":
        model = models.build_cnn()
        x = preprocess.Standardizer.fit(ds.x_train)(ds.x_train[:n])[..., None]
    else:  # raw pixels, resized inside the model, batches held as tensors
        model = models.build_resnet50(models.ResNetSpec(32, "none", "full"))[0]
        x = ds.x_train[:n][..., None]
    with tempfile.TemporaryDirectory() as tmp:
        stage = train.StageData(x, ds.y_train[:n], on_device=name != "cnn")
        res = train.fit_stage(model, Path(tmp) / "s", stage, recipe,
                              train.RunOptions(tensorboard=False))
    hist = res.history
    steady = statistics.median(r["seconds"] for r in hist[1:])
    out.append({"model": name, "images": n, "batch_size": batch,
                "steady_epoch_seconds": steady, "train_images_per_s": round(n / steady, 1)})
print("RESULT " + json.dumps(out))
"""


def run_backend(backend: str) -> list[dict]:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True
    )
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def main() -> dict:
    load_before = list(os.getloadavg())
    backends = {b: run_backend(b) for b in ("tensorflow", "jax")}
    result = {
        "benchmark": "CPU training throughput per Keras backend (fit_stage, real images)",
        "backends": backends,
    }
    result = stamp.measured(result, load_before)
    stamp.save("cpu_training", result)
    return result


if __name__ == "__main__":
    main()
