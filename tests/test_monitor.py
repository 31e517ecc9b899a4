"""fmnist_lib.monitor: the profile, its record, and each drift check and its threshold."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from fmnist_lib import data, monitor
from fmnist_lib.data import CLASS_NAMES, DataError
from fmnist_lib.monitor import Check

N_CLASSES = len(CLASS_NAMES)


def planted(low_share: float = 0.02) -> monitor.Profile:
    """A profile with round numbers: pixel mean 20-150, spread 30-115, a balanced mix."""
    model = monitor.ModelProfile(
        "cnn", 10_000, (0.1,) * N_CLASSES, (0.45, 0.6, 0.95, 0.99), low_share
    )
    return monitor.Profile(
        60_000, monitor.Band(20, 150), monitor.Band(30, 115), monitor.Band(0, 40), (model,)
    )


def confident(labels: np.ndarray, top: float = 0.9) -> np.ndarray:
    """Probabilities whose top class is `labels` with probability `top`."""
    proba = np.full((len(labels), N_CLASSES), (1 - top) / (N_CLASSES - 1))
    proba[np.arange(len(labels)), labels] = top
    return proba


def garments(n: int, seed: int = 0) -> np.ndarray:
    """Light blobs on black, inside the planted bands: uint8 (n, 28, 28)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    images[:, 4:24, 6:22] = rng.integers(120, 256, (n, 20, 16))
    return images


def kinds(found: list[monitor.DriftWarning]) -> list[Check]:
    return [w.check for w in found]


# --- the profile and its record ------------------------------------------------------


def test_profile_measures_the_planted_statistics():
    images = np.stack([np.full((28, 28), v, np.uint8) for v in range(200)])
    proba = confident(np.array([0] * 30 + [1] * 70), top=0.9)
    proba[:5] = confident(np.zeros(5, int), top=0.3)
    prof = monitor.profile(images, {"mlp": proba})
    assert prof.pixel_mean.low == pytest.approx(np.percentile(np.arange(200), 0.5))
    assert prof.pixel_mean.high == pytest.approx(np.percentile(np.arange(200), 99.5))
    assert prof.pixel_std == monitor.Band(0.0, 0.0)
    (m,) = prof.models
    assert m.class_mix[:2] == (0.3, 0.7) and sum(m.class_mix) == pytest.approx(1)
    assert (m.n_test, m.low_confidence_share) == (100, 0.05)
    assert prof.model("mlp") is m and prof.model("cnn") is None


def test_profile_round_trips_through_json_and_damage_is_named(tmp_path):
    prof = planted()
    monitor.save(prof, tmp_path)
    assert monitor.load(tmp_path) == prof
    blob = json.loads((tmp_path / monitor.PROFILE_FILE).read_text())
    assert blob["schema"] == monitor.SCHEMA and blob["models"]["cnn"]["class_mix"]["Bag"] == 0.1
    for broken in ("{not json", json.dumps({**blob, "schema": 99}), json.dumps({"schema": 1})):
        (tmp_path / monitor.PROFILE_FILE).write_text(broken)
        with pytest.raises(monitor.ProfileError, match=r"monitor.json: damaged"):
            monitor.load(tmp_path)


def test_run_profile_falls_back_to_the_run_records_then_says_unavailable(
    tmp_path, real_ds, monkeypatch
):
    (tmp_path / "models" / "mlp").mkdir(parents=True)
    labels = real_ds.y_test[:100]
    np.savez(tmp_path / "models" / "mlp" / "predictions.npz", proba=confident(labels))
    prof, note = monitor.run_profile(tmp_path)
    assert "no monitor.json" in note
    assert prof == monitor.profile(real_ds.x_train, {"mlp": confident(labels)})
    (tmp_path / monitor.PROFILE_FILE).write_text("[]")
    assert "damaged" in monitor.run_profile(tmp_path)[1]
    (tmp_path / monitor.PROFILE_FILE).unlink()

    def no_data(**_):
        raise DataError("no data files here")

    monkeypatch.setattr(data, "load_fashion_mnist", no_data)
    prof, note = monitor.run_profile(tmp_path)
    assert prof is None and note.startswith("monitoring unavailable: ")
    assert "no data files here" in note


def test_the_share_bound_allows_for_the_test_sets_size():
    assert monitor.share_bound(0.0, 10_000) == pytest.approx(6.9e-4, rel=0.01)  # -ln(0.001)/n
    assert 0.3 < monitor.share_bound(0.3, 500) < 0.37 and monitor.share_bound(1.0, 5) == 1.0
    assert monitor.share_bound(0.3, 500) > monitor.share_bound(0.3, 10_000) > 0.3


# --- what warns ----------------------------------------------------------------------


def test_in_distribution_input_raises_no_warning():
    images = garments(300)
    proba = confident(np.arange(300) % N_CLASSES)
    assert monitor.check({"a.gz": images}, proba, planted(), {}, "cnn") == []


def test_the_real_test_images_do_not_warn(real_ds):
    labels = real_ds.y_test
    prof = monitor.profile(real_ds.x_train, {"cnn": confident(labels)})
    proba = confident(labels)
    assert monitor.check({"test.gz": real_ds.x_test}, proba, prof, {}, "cnn") == []
    singles = {f"t{i}.png": real_ds.x_test[i : i + 1] for i in range(300)}
    assert monitor.check(singles, proba[:300], prof, {}, "cnn") == []
    # The bands' comment: the 0.5th-99.5th percentiles of the full training set.
    assert (prof.pixel_mean.low, prof.pixel_mean.high) == pytest.approx((14.5, 153.8), abs=0.05)
    assert (prof.pixel_std.low, prof.pixel_std.high) == pytest.approx((31.2, 114.7), abs=0.05)


def test_an_inverted_input_warns_on_polarity_and_pixel_mean(real_ds):
    prof = monitor.profile(real_ds.x_train, {})
    found = monitor.check({"neg.csv": 255 - real_ds.x_test[:50]}, confident([0] * 50), prof)
    assert kinds(found)[:2] == [Check.POLARITY, Check.PIXEL_MEAN]
    assert found[0].message.startswith("neg.csv: 50 of 50 images have a light background")
    assert found[0].files == ("neg.csv",)


def test_a_converted_photo_warns_with_its_conversion():
    conversion = "200×300 RGB → 28×28 grayscale, inverted (light background)"
    found = monitor.check(
        {"photo.png": garments(1)}, confident([3]), planted(), {"photo.png": conversion}, "cnn"
    )
    assert kinds(found) == [Check.CONVERTED]
    assert found[0].message.startswith(f"photo.png: {conversion}: not the data set's own form")


def test_one_class_warns_on_class_mix_only_from_the_minimum_batch():
    n = monitor.MIN_CLASS_MIX_IMAGES
    for size, warns in ((n - 1, False), (n, True)):
        found = monitor.check(
            {"t.csv": garments(size)}, confident([1] * size), planted(), {}, "cnn"
        )
        assert (Check.CLASS_MIX in kinds(found)) is warns
    (w,) = found
    assert w.value == pytest.approx(0.9) and w.threshold == monitor.MAX_CLASS_MIX_TV
    assert "100% Trouser against 10% on the test set" in w.message


def test_output_checks_need_the_served_models_profile():
    found = monitor.check({"t.csv": garments(300)}, confident([1] * 300), planted(), {}, "mlp")
    assert found == []


def test_files_are_checked_one_by_one_and_together():
    bright = np.zeros((3, 28, 28), np.uint8)
    bright[:, 2:26, 2:26] = 230  # pixel mean 169, on black
    images = {"ok.gz": garments(100), "bright.png": bright}
    found = monitor.check(images, confident([0] * 103), planted(), {}, None)
    assert [(w.check, w.files) for w in found] == [(Check.PIXEL_MEAN, ("bright.png",))]
    singles = {f"b{i}.png": bright[:1] for i in range(5)}
    (w,) = monitor.check(singles, confident([0] * 5), planted())
    assert w.files == tuple(singles) and w.message.startswith("b0.png, b1.png, b2.png and 2 more")


# --- each threshold flips just past it -----------------------------------------------


def test_pixel_mean_threshold_flips_one_image_past_the_band():
    n = 10
    prof = dataclasses.replace(planted(), pixel_std=monitor.Band(0, 128))  # spread never warns
    limit = monitor.chance_limit(n, monitor.OUTSIDE_SHARE)
    assert limit == 2  # P(3 or more of 10 outside) < 0.001 at 1%
    images = garments(n)
    images[:limit, 2:26, 2:26] = 230  # pixel mean 169: outside
    images[limit] = 0
    images[limit, 4:24, 2:26] = 245  # 480 pixels of 245: mean exactly 150, the band's top
    assert monitor.check({"x.gz": images}, confident([0] * n), prof) == []
    images[limit, 2, 2] = 1  # mean 150.0013: outside
    (w,) = monitor.check({"x.gz": images}, confident([0] * n), prof)
    assert (w.check, w.value, w.threshold) == (Check.PIXEL_MEAN, 3, 2)


def test_polarity_threshold_flips_past_mid_grey():
    image = np.zeros((1, 28, 28), np.uint8)
    image[0, [0, -1], :] = monitor.BORDER_MAX_MEAN
    image[0, :, [0, -1]] = monitor.BORDER_MAX_MEAN
    assert monitor.border_mean(image)[0] == monitor.BORDER_MAX_MEAN
    assert Check.POLARITY not in kinds(monitor.check({"p.png": image}, confident([0]), planted()))
    image[0, 0, 0] += 1
    assert Check.POLARITY in kinds(monitor.check({"p.png": image}, confident([0]), planted()))


def test_class_mix_threshold_flips_past_its_distance():
    labels = np.repeat(np.arange(N_CLASSES), 20)  # 200 images, balanced
    for moved, warns in ((39, False), (41, True)):  # total variation 0.195, then 0.205
        mix = labels.copy()
        mix[np.flatnonzero(mix > 0)[:moved]] = 0
        found = monitor.check({"m.csv": garments(200)}, confident(mix), planted(), {}, "cnn")
        assert (Check.CLASS_MIX in kinds(found)) is warns


def test_confidence_threshold_flips_one_prediction_past_the_limit():
    n = 100
    limit = monitor.chance_limit(n, monitor.share_bound(0.02, 10_000))
    proba = confident(np.arange(n) % N_CLASSES)
    proba[:limit] = confident(np.zeros(limit, int), top=0.49)
    proba[limit] = confident([0], top=monitor.LOW_CONFIDENCE)  # exactly 0.5: not low
    assert monitor.check({"c.gz": garments(n)}, proba, planted(), {}, "cnn") == []
    proba[limit] = confident([0], top=0.499)
    (w,) = monitor.check({"c.gz": garments(n)}, proba, planted(), {}, "cnn")
    assert (w.check, w.value, w.threshold) == (Check.CONFIDENCE, limit + 1, limit)
    assert f"{limit + 1} of {n} predictions have a top-class probability below 0.5" in w.message


def test_class_mix_threshold_is_rarely_reached_by_chance():
    """The constant's comment: 200 draws from a balanced mix exceed 0.16 once in 1,000."""
    rng = np.random.default_rng(0)
    n = monitor.MIN_CLASS_MIX_IMAGES
    shares = rng.multinomial(n, [0.1] * N_CLASSES, size=100_000) / n
    tv = np.abs(shares - 0.1).sum(axis=1) / 2
    assert np.percentile(tv, 99.9) == pytest.approx(0.16, abs=0.01)
    assert (tv > monitor.MAX_CLASS_MIX_TV).mean() < monitor.ALPHA


def test_warnings_are_recorded_as_json():
    found = monitor.check({"t.csv": garments(300)}, confident([1] * 300), planted(), {}, "cnn")
    blob = json.loads(json.dumps([w.to_dict() for w in found]))
    assert blob[0]["check"] == "class_mix" and blob[0]["files"] == ["t.csv"]
