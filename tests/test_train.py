"""fmnist_lib.train: kill-and-resume with no gaps, refusing to overwrite, the feature cache."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import asdict, fields
from pathlib import Path

import keras
import numpy as np
import pytest

from fmnist_lib import augment, models, parameters, records, train

EPOCHS = 6
SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import keras, numpy as np
    from fmnist_lib import config, models, train

    config.log_to_console()  # shows "Resuming main after ..."

    class SlowEpochs(keras.callbacks.Callback):  # gives the test time to kill us mid-run
        def on_epoch_end(self, epoch, logs=None):
            time.sleep(1.0)

    rng = np.random.default_rng(0)
    x = rng.random((256, 28, 28)).astype("float32")
    y = np.arange(256) % 10
    keras.utils.set_random_seed(0)
    recipe = train.TrainConfig(epochs={epochs}, batch_size=64, learning_rate=1e-3, seed=0)
    run = train.RunOptions(resume=sys.argv[2] == "resume", callbacks=[SlowEpochs()])
    train.fit_stage(models.build_mlp(hidden=(32, 16)), Path(sys.argv[1]),
                    train.StageData(x, y, (x[:64], y[:64])), recipe, run)
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


def test_existing_training_is_not_overwritten_but_resumes(tmp_path, caplog):
    data = train.StageData(np.zeros((20, 28, 28), np.float32), np.arange(20) % 10)
    recipe = train.TrainConfig(epochs=1, batch_size=10, seed=0)
    quiet = train.RunOptions(tensorboard=False)
    first = train.fit_stage(models.build_mlp(hidden=(8, 8)), tmp_path / "s", data, recipe, quiet)
    with pytest.raises(train.TrainingStateError, match="RESUME=True"):
        train.fit_stage(models.build_mlp(hidden=(8, 8)), tmp_path / "s", data, recipe, quiet)
    # Resuming a finished stage trains nothing more: the checkpoint and its history come back.
    resume = train.RunOptions(resume=True, tensorboard=False)
    with caplog.at_level(logging.INFO, logger="fmnist_lib.train"):
        again = train.fit_stage(
            models.build_mlp(hidden=(8, 8)), tmp_path / "s", data, recipe, resume
        )
    assert "Resuming s after epoch 1 of 1" in caplog.text
    assert again.resumed_from == 1 and again.history == first.history
    assert int(again.model.optimizer.iterations.numpy()) == 2  # 20 images / 10 per step, once


def test_scratch_model_folder_is_cleared_and_says_so(tmp_path, caplog):
    (tmp_path / "models" / "mlp").mkdir(parents=True)
    (tmp_path / "models" / "mlp" / "state.json").write_text("{}")
    with caplog.at_level(logging.INFO, logger="fmnist_lib.train"):
        path = train.model_dir(tmp_path, "mlp", scratch=True)
    assert path.is_dir() and not any(path.iterdir())
    assert f"cleared earlier interactive training in {path}" in caplog.text


def test_in_memory_data_refuses_host_augmentation():
    x, y = np.zeros((4, 28, 28), np.float32), np.arange(4)
    with pytest.raises(ValueError, match="in_memory training takes no augmentation"):
        train.StageData(x, y, augment=augment.parse_augment("flip"), in_memory=True)


def test_training_writes_tensorboard_logs_and_a_safe_model(tmp_path):
    x = np.random.default_rng(0).random((40, 28, 28)).astype(np.float32)
    y = np.arange(40) % 10
    recipe = train.TrainConfig(epochs=2, batch_size=20, seed=0)
    res = train.fit_stage(
        models.build_mlp(hidden=(8, 8)), tmp_path / "s", train.StageData(x, y, (x, y)), recipe
    )
    assert list((tmp_path / "s" / "tensorboard").rglob("events.out.tfevents*"))
    reloaded = train.save_and_reload(res.model, tmp_path / "model.keras")
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), res.model.predict(x, verbose=0))


def test_checkpoints_can_be_spaced_in_time_and_the_last_epoch_is_always_saved(tmp_path):
    x = np.random.default_rng(0).random((40, 28, 28)).astype(np.float32)
    y = np.arange(40) % 10
    recipe = train.TrainConfig(epochs=3, batch_size=20, seed=0, checkpoint_seconds=3600)
    quiet = train.RunOptions(tensorboard=False)
    train.fit_stage(
        models.build_mlp(hidden=(8, 8)), tmp_path / "s", train.StageData(x, y), recipe, quiet
    )
    history = json.loads((tmp_path / "s" / "history.json").read_text())
    assert ["checkpoint_seconds" in row for row in history] == [False, False, True]
    assert records.read_json(tmp_path / "s" / "state.json")["completed_epochs"] == 3


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"optimizer": "rmsprop"}, "OPTIMIZER='rmsprop'"),
        ({"ema": 1.0}, "EMA=1.0"),
        ({"val_every": 0}, "VAL_EVERY=0"),
        ({"checkpoint_seconds": -1}, "CHECKPOINT_SECONDS=-1"),
        ({"early_stopping": 3, "val_every": 2}, "needs VAL_EVERY=1"),
    ],
)
def test_bad_recipes_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        train.TrainConfig(**changes)


def test_recipe_checks_agree_with_the_notebook_declarations():
    """Each value TrainConfig refuses, the notebook's one validator refuses too."""
    refused = {"OPTIMIZER": "rmsprop", "EMA": 1.0, "VAL_EVERY": 0, "CHECKPOINT_SECONDS": -1.0}
    for name, value in refused.items():
        with pytest.raises(ValueError, match=name):
            train.TrainConfig.from_parameters({name: value})
        assert parameters.check("03_training", {name: value})[1], f"{name}={value!r} accepted"
    both = {**parameters.defaults("03_training"), "EARLY_STOPPING": 3, "VAL_EVERY": 2}
    assert any("needs VAL_EVERY=1" in e for e in parameters.training_rules(both))


def test_recorded_parameters_rebuild_the_recipe():
    """03_training records its parameters whole; they rebuild the recipe it trained with."""
    declared = parameters.specs("03_training")
    assert {f.name.upper() for f in fields(train.TrainConfig)} - set(declared) == {
        "STEPS_PER_EXECUTION"  # not a notebook parameter: the default
    }
    defaults = parameters.defaults("03_training")
    assert train.TrainConfig.from_parameters(defaults) == train.TrainConfig()
    changed = {
        "EPOCHS": 7, "BATCH_SIZE": 64, "LEARNING_RATE": 0.05, "OPTIMIZER": "sgd",
        "WEIGHT_DECAY": 5e-4, "WARMUP_EPOCHS": 2, "LABEL_SMOOTHING": 0.1, "EMA": 0.9,
        "EARLY_STOPPING": 3, "FINE_TUNE_EPOCHS": 4, "CHECKPOINT_SECONDS": 30.0, "WORKERS": 3,
        "SEED": 7,
    }  # fmt: skip
    recipe = train.TrainConfig.from_parameters({**defaults, **changed})
    assert asdict(recipe) == {
        **asdict(train.TrainConfig()),
        **{k.lower(): v for k, v in changed.items()},
    }
    recorded = json.loads(json.dumps({**defaults, **changed}))  # as metrics.json holds them
    assert train.TrainConfig.from_parameters(recorded) == recipe
    assert train.TrainConfig.from_parameters({"VAL_EVERY": 2, "MODEL": "cnn"}).val_every == 2


def test_recipe_builds_the_optimizer_it_names():
    sgd = train.make_optimizer(train.TrainConfig(optimizer="sgd", weight_decay=5e-4, ema=0.99), 10)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.nesterov and sgd.momentum == 0.9
    assert sgd.use_ema and sgd.ema_momentum == 0.99 and sgd.weight_decay == 5e-4
    assert isinstance(
        train.make_optimizer(train.TrainConfig(weight_decay=0.05), 10), keras.optimizers.AdamW
    )
    assert train.TrainConfig(epochs=7, val_every=3).validation_epochs() == [3, 6, 7]
    warm = train.make_optimizer(train.TrainConfig(epochs=4, warmup_epochs=1, learning_rate=0.2), 40)
    lr = [
        float(warm.learning_rate_schedule(step))
        if hasattr(warm, "learning_rate_schedule")
        else float(warm._learning_rate(step))
        for step in (0, 5, 10, 39)
    ]
    assert lr[0] == 0.0 and lr[1] == pytest.approx(0.1) and lr[2] == pytest.approx(0.2)
    assert lr[3] < 0.01


# A tiny stand-in for ResNet50 with the same input pipeline: raw uint8 pixels, augmentation
# and normalisation layers inside the model, batches held on the device.
RESUME_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import keras, numpy as np
    from fmnist_lib import augment, layers, train

    class StopAfter(keras.callbacks.Callback):  # stands in for a kill after an epoch's checkpoint
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == 2:
                self.model.stop_training = True

    def tiny():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((28, 28, 1), dtype="uint8")
        spec = augment.parse_augment("flip+shift:4+cutout+erase")
        x = layers.RandomAugment.from_spec(spec, 3)(inputs)
        x = layers.ResNetInput(28, "standardize", 70.0, 90.0)(x)
        x = keras.layers.Conv2D(4, 3)(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (100, 28, 28, 1), dtype=np.uint8)
    y = np.arange(100) % 10
    recipe = train.TrainConfig(epochs=4, batch_size=32, learning_rate=0.05, optimizer="sgd",
                               ema=0.5, seed=1)
    root = Path(sys.argv[1])
    data = train.StageData(x, y, on_device=True)
    run = train.RunOptions(tensorboard=False)
    straight = train.fit_stage(tiny(), root / "straight", data, recipe, run)
    stop = train.RunOptions(callbacks=[StopAfter()], tensorboard=False)
    train.fit_stage(tiny(), root / "split", data, recipe, stop)
    resumed = train.fit_stage(tiny(), root / "split", data, recipe,
                              train.RunOptions(resume=True, tensorboard=False))
    state = lambda m: keras.ops.convert_to_numpy(m.layers[1].seed_generator.state).tolist()
    print(json.dumps({
        "diff": max(float(np.abs(a - b).max()) for a, b in
                    zip(straight.model.get_weights(), resumed.model.get_weights())),
        "loss": [[r["loss"] for r in res.history] for res in (straight, resumed)],
        "state": [state(straight.model), state(resumed.model)],
        "resumed_from": resumed.resumed_from,
    }))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_in_model_augmentation_resumes_exactly(tmp_path, backend):
    """Killed after epoch 2 and resumed, the run equals one that never stopped: the same
    batches, the same augmentation stream (seeded per seed, epoch and step), the same EMA."""
    if backend == "jax":
        pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run(
        [sys.executable, "-c", RESUME_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["resumed_from"] == 2
    # seed 3; 10 draws a step (flip 1, shift 2, erase 5, cutout 2), 3 steps x 4 epochs
    assert result["state"][0] == result["state"][1] == [3, 10 * 3 * 4]
    assert result["loss"][0] == pytest.approx(result["loss"][1], rel=1e-5)
    assert result["diff"] < 1e-5


@pytest.mark.slow
def test_head_on_cached_features_matches_in_loop_training(tmp_path, monkeypatch):
    """Training the head on cached features equals training the frozen model end to end."""
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)
    y = np.arange(64) % 10
    keras.utils.set_random_seed(1)
    full, backbone, head_b, _ = models.build_resnet50(models.ResNetSpec(32, "none", "frozen"))
    head_a = models.build_head()
    head_a.set_weights(head_b.get_weights())

    feats, path, cached = train.pooled_features(full, x)
    again, path2, cached2 = train.pooled_features(full, x)
    assert not cached and cached2 and path == path2 and np.array_equal(feats, again)
    assert path.name.startswith("resnet50-imagenet-32px-")

    recipe = train.TrainConfig(epochs=3, batch_size=16, learning_rate=1e-3, seed=0)
    quiet = train.RunOptions(tensorboard=False)
    # The head trains as train_model trains it (arrays, XLA, many steps per execution);
    # the full model sees the same Keras-shuffled order without XLA.
    cached = train.StageData(feats, y, in_memory=True, jit_compile=True)
    on_feats = train.fit_stage(head_a, tmp_path / "a", cached, recipe, quiet).model
    pixels = train.StageData(x, y, in_memory=True)
    in_loop = train.fit_stage(full, tmp_path / "b", pixels, recipe, quiet).model
    np.testing.assert_allclose(
        on_feats.predict(feats, verbose=0), in_loop.predict(x, verbose=0), atol=2e-4
    )
    for a, b in zip(on_feats.get_weights(), head_b.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=2e-4)


def test_feature_cache_keys_on_the_stem_and_normalisation(tmp_path):
    from fmnist_lib.preprocess import Standardizer

    x = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1), dtype=np.uint8)
    paths = set()
    for stem, standardizer in (
        ("imagenet", None),
        ("small", None),
        ("small", Standardizer(0.3, 0.4)),
    ):
        keras.utils.set_random_seed(1)  # the same weights for every variant
        spec = models.ResNetSpec(32, "none", "frozen", stem)
        model = models.build_resnet50(spec, standardizer)[0]
        paths.add(train.pooled_features(model, x, cache_dir=tmp_path)[1].name)
    assert len(paths) == 3 and any("-small-32px-" in p for p in paths)


FEATURE_RACE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import keras, numpy as np
    from fmnist_lib import models, train

    save = np.save
    def slow_save(*args, **kwargs):  # widen the window between writing and renaming
        save(*args, **kwargs)
        time.sleep(3)
    np.save = slow_save

    keras.utils.set_random_seed(1)
    model = models.build_resnet50(models.ResNetSpec(32, "none", "frozen"))[0]
    x = np.random.default_rng(0).integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)
    feats, path, _ = train.pooled_features(model, x, cache_dir=Path(sys.argv[1]))
    print(path.name, float(feats.sum()))
    """
)


@pytest.mark.slow
def test_two_processes_computing_the_same_features_both_succeed(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", FEATURE_RACE, str(tmp_path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    last = [out.strip().splitlines()[-1].split() for out, _ in outs]
    assert last[0] == last[1]  # the same file, the same features
    sidecar = last[0][0].replace(".npy", ".json")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([last[0][0], sidecar])  # no temp


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[:-100]), "its SHA-256 is not the one recorded"),
        (lambda p: p.with_suffix(".json").unlink(), "no f.json beside it"),
        (lambda p: p.with_suffix(".json").write_text("{"), "f.json unreadable"),
        (lambda p: None, ""),  # whole: read back
    ],
)
def test_a_cached_feature_file_is_verified_before_it_is_trusted(tmp_path, damage, problem):
    """Issue 23: a truncated cache .npy was trusted forever."""
    features = np.random.default_rng(0).normal(size=(6, 8)).astype(np.float32)
    path = tmp_path / "f.npy"
    train.write_cached_features(path, features)
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["shape"] == [6, 8] and side["dtype"] == "float32" and len(side["sha256"]) == 64
    damage(path)
    read, why = train.read_cached_features(path, 6)
    assert problem in why and (read is None) == bool(problem)
    if not problem:
        np.testing.assert_array_equal(read, features)
        assert train.read_cached_features(path, 7) == (
            None,
            "shape (6, 8) float32, expected 7 rows",
        )


def test_a_damaged_feature_cache_entry_is_rebuilt_saying_so(tmp_path, caplog):
    x = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1), dtype=np.uint8)
    keras.utils.set_random_seed(1)
    model = models.build_resnet50(models.ResNetSpec(32, "none", "frozen"))[0]
    feats, path, hit = train.pooled_features(model, x, cache_dir=tmp_path)
    path.write_bytes(path.read_bytes()[:-64])  # truncated, as a full disk or a kill leaves it
    caplog.set_level(logging.WARNING, logger="fmnist_lib.train")
    again, path2, hit2 = train.pooled_features(model, x, cache_dir=tmp_path)
    assert (hit, hit2, path2) == (False, False, path)
    np.testing.assert_allclose(again, feats, rtol=1e-6)
    (record,) = caplog.records
    assert record.getMessage() == (
        f"fmnist: feature cache {path} is damaged (its SHA-256 is not the one recorded in "
        f"{path.stem}.json); rebuilding it"
    )
    assert train.pooled_features(model, x, cache_dir=tmp_path)[2] is True  # whole again
