"""fmnist_lib.train: kill-and-resume with no gaps, refusing to overwrite, the feature cache."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from fmnist_lib import models, records, train

EPOCHS = 6
SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import keras, numpy as np
    from fmnist_lib import models, train

    class SlowEpochs(keras.callbacks.Callback):  # gives the test time to kill us mid-run
        def on_epoch_end(self, epoch, logs=None):
            time.sleep(1.0)

    rng = np.random.default_rng(0)
    x = rng.random((256, 28, 28)).astype("float32")
    y = np.arange(256) % 10
    keras.utils.set_random_seed(0)
    train.fit_stage(models.build_mlp(hidden=(32, 16)), Path(sys.argv[1]), x, y, (x[:64], y[:64]),
                    epochs={epochs}, batch_size=64, learning_rate=1e-3, seed=0,
                    resume=sys.argv[2] == "resume", callbacks=[SlowEpochs()])
    """
).format(epochs=EPOCHS)


def _start(stage_dir: Path, mode: str) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(stage_dir), mode],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
def test_killed_run_resumes_from_last_epoch_without_gaps(tmp_path):
    stage = tmp_path / "main"
    proc = _start(stage, "fresh")
    deadline = time.time() + 300
    while time.time() < deadline:
        state = records.read_json(stage / "state.json")
        if state and state["completed_epochs"] >= 2:
            break
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = records.read_json(stage / "state.json")["completed_epochs"]
    assert 2 <= killed_at < EPOCHS, "the run must be killed mid-training"
    before = json.loads((stage / "history.json").read_text())

    out = _start(stage, "resume").communicate(timeout=300)[0]
    assert f"Resuming main after epoch {killed_at} of {EPOCHS}" in out
    history = json.loads((stage / "history.json").read_text())
    assert [row["epoch"] for row in history] == list(range(EPOCHS))
    assert history[:killed_at] == before[:killed_at]  # nothing computed was lost or redone
    assert records.read_json(stage / "state.json")["completed_epochs"] == EPOCHS
    reloaded = train.load_checkpoint(stage / train.CHECKPOINT)
    assert reloaded.optimizer.iterations.numpy() == EPOCHS * 4  # 256 images / 64 per step


def test_existing_training_is_not_overwritten(tmp_path):
    x = np.zeros((20, 28, 28), np.float32)
    y = np.arange(20) % 10
    kwargs = dict(epochs=1, batch_size=10, learning_rate=1e-3, seed=0, tensorboard=False)
    train.fit_stage(models.build_mlp(hidden=(8, 8)), tmp_path / "s", x, y, None, **kwargs)
    with pytest.raises(train.TrainingStateError, match="RESUME=True"):
        train.fit_stage(models.build_mlp(hidden=(8, 8)), tmp_path / "s", x, y, None, **kwargs)


def test_training_writes_tensorboard_logs_and_a_safe_model(tmp_path):
    x = np.random.default_rng(0).random((40, 28, 28)).astype(np.float32)
    y = np.arange(40) % 10
    res = train.fit_stage(
        models.build_mlp(hidden=(8, 8)),
        tmp_path / "s",
        x,
        y,
        (x, y),
        epochs=2,
        batch_size=20,
        learning_rate=1e-3,
        seed=0,
    )
    assert list((tmp_path / "s" / "tensorboard").rglob("events.out.tfevents*"))
    reloaded = train.save_and_reload(res.model, tmp_path / "model.keras")
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), res.model.predict(x, verbose=0))


@pytest.mark.slow
def test_head_on_cached_features_matches_in_loop_training(tmp_path, monkeypatch):
    """Training the head on cached features equals training the frozen model end to end."""
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    x = rng.normal(0, 50, (64, 32, 32, 3)).astype(np.float32)
    y = np.arange(64) % 10
    keras.utils.set_random_seed(1)
    backbone = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3))
    backbone.trainable = False
    head_a = models.build_head()
    head_b = models.build_head()
    head_b.set_weights(head_a.get_weights())
    inputs = keras.Input((32, 32, 3))
    full = keras.Model(inputs, head_b(keras.layers.GlobalAveragePooling2D()(backbone(inputs))))

    feats, path, cached = train.pooled_features(backbone, x)
    again, path2, cached2 = train.pooled_features(backbone, x)
    assert not cached and cached2 and path == path2 and np.array_equal(feats, again)

    kw = dict(epochs=3, batch_size=16, learning_rate=1e-3, seed=0, tensorboard=False)
    # The head trains as train_model trains it (arrays, XLA, many steps per execution);
    # the full model sees the same Keras-shuffled order without XLA.
    kw["in_memory"] = True
    on_feats = train.fit_stage(head_a, tmp_path / "a", feats, y, None, jit_compile=True, **kw).model
    in_loop = train.fit_stage(full, tmp_path / "b", x, y, None, **kw).model
    np.testing.assert_allclose(
        on_feats.predict(feats, verbose=0), in_loop.predict(x, verbose=0), atol=2e-4
    )
    for a, b in zip(on_feats.get_weights(), head_b.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=2e-4)
