"""Confident learning on planted label flips; the out-of-fold training; the record; the refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict

from fmnist_lib import data
from fmnist_lib import label_errors as le

N_CLASSES, N_IMAGES, FLIP_RATE = 5, 3000, 0.08


@pytest.fixture(scope="module")
def planted():
    """Well-separated Gaussian blobs, 8% of labels flipped at random to another class, and
    out-of-fold probabilities of a logistic regression trained on the flipped labels."""
    rng = np.random.default_rng(0)
    true = rng.integers(0, N_CLASSES, N_IMAGES)
    centres = rng.normal(0, 6, (N_CLASSES, 8))
    x = centres[true] + rng.normal(0, 1, (N_IMAGES, 8))
    given = true.copy()
    flip = rng.random(N_IMAGES) < FLIP_RATE
    given[flip] = (true[flip] + rng.integers(1, N_CLASSES, flip.sum())) % N_CLASSES
    probs = cross_val_predict(
        LogisticRegression(max_iter=500), x, given, cv=4, method="predict_proba"
    )
    return given, probs, given != true


@pytest.mark.parametrize("method", le.METHODS)
def test_planted_flips_are_found(planted, method):
    given, probs, wrong = planted
    mask = le.find_issues(given, probs, method)
    hits = (mask & wrong).sum()
    assert hits / wrong.sum() >= 0.9, "recall"  # flagging nothing fails here
    assert hits / mask.sum() >= 0.95, "precision"  # flagging every disagreement fails here


def test_estimated_errors_and_the_calibrated_joint(planted):
    given, probs, wrong = planted
    joint = le.confident_joint(given, probs)
    calibrated = le.calibrate(joint, given)
    assert calibrated.sum() == pytest.approx(len(given))
    np.testing.assert_allclose(calibrated.sum(axis=1), np.bincount(given))
    assert le.estimated_errors(given, probs) == pytest.approx(wrong.sum(), rel=0.1)
    # Most of the mass is on the diagonal; a joint built from argmax alone (no thresholds)
    # would count the same, so check thresholds directly: t_j is the mean self-confidence.
    t = le.thresholds(given, probs)
    assert t[2] == pytest.approx(probs[given == 2, 2].mean())


def test_confident_joint_on_a_hand_worked_example():
    # t = (0.75, 0.7); image 1 (label 0) reaches t_1 only: counted C[0][1]; image 3 (label 1)
    # reaches neither threshold: not counted.
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.4, 0.6]])
    t = le.thresholds(labels, probs)
    np.testing.assert_allclose(t, [0.65, 0.7])
    np.testing.assert_array_equal(le.confident_assignment(probs, t), [0, -1, 1, -1])
    probs[1] = [0.25, 0.75]
    t = le.thresholds(labels, probs)
    np.testing.assert_array_equal(le.confident_joint(labels, probs), [[1, 1], [0, 1]])
    # Row 1 holds 2 images but 1 is counted: calibration doubles it.
    np.testing.assert_allclose(
        le.calibrate(le.confident_joint(labels, probs), labels), [[1, 1], [0, 2]]
    )


def test_rate_interval_contains_the_planted_rate(planted):
    given, probs, wrong = planted
    rate, low, high = le.error_rate(given, probs, level=0.95, replicates=100, seed=1)
    assert low < wrong.mean() < high
    assert low < rate < high
    assert high - low < 0.05  # an interval, not everything


def test_ranking_puts_the_least_confident_first(planted):
    given, probs, _ = planted
    mask = le.find_issues(given, probs)
    for by in le.RANKINGS:
        order = le.rank_issues(given, probs, mask, by)
        assert set(order) == set(np.flatnonzero(mask))
        scores = le.issue_scores(given, probs, by)[order]
        assert (np.diff(scores) >= 0).all()


@pytest.mark.parametrize(
    "labels, probs, match",
    [
        (np.array([0, 1]), np.array([[0.5, 0.4], [0.5, 0.5]]), "sum to 1"),
        (np.array([0, 1, 1]), np.array([[0.5, 0.5], [0.5, 0.5]]), "to match probs"),
        (np.array([0, 2]), np.array([[0.5, 0.5], [0.5, 0.5]]), r"values in \[0, 2\)"),
        (np.array([0, 0]), np.array([[0.5, 0.5], [0.5, 0.5]]), r"classes \[1\] have no image"),
        (np.array([0.0, 1.0]), np.array([[0.5, 0.5], [0.5, 0.5]]), "integers"),
        (np.array([0, 1]), np.array([[np.nan, 1.0], [0.5, 0.5]]), "finite"),
        (np.array([0, 1]), np.array([0.5, 0.5]), "shape"),
    ],
)
def test_refusals_name_the_problem(labels, probs, match):
    with pytest.raises(le.LabelAuditError, match=match):
        le.find_issues(labels, probs)


def test_refusals_of_settings(planted):
    given, probs, _ = planted
    with pytest.raises(le.LabelAuditError, match="method"):
        le.find_issues(given, probs, "everything")
    with pytest.raises(le.LabelAuditError, match="level"):
        le.error_rate(given, probs, level=1.5)
    with pytest.raises(le.LabelAuditError, match="LABEL_MODEL"):
        le.FoldConfig(model="resnet50")
    with pytest.raises(le.LabelAuditError, match="FOLDS"):
        le.FoldConfig(folds=1)
    images = np.zeros((30, 28, 28), np.uint8)
    with pytest.raises(le.LabelAuditError, match="at least that many images"):
        le.out_of_fold(images, np.arange(30) % 10, le.FoldConfig(folds=4))
    with pytest.raises(le.LabelAuditError, match="images"):
        le.out_of_fold(images[:10], np.arange(30) % 10, le.FoldConfig(folds=2))


def test_public_check_counts_flagged_and_top_k():
    reported = [
        le.Reported("train", 5, "Shirt", "index only", "u", ""),
        le.Reported("test", 1, "Bag", "index only", "u", ""),
        le.Reported("train", 99, "Bag", "index only", "u", ""),  # not audited
        le.Reported("train", 7, "Bag", "index only", "u", ""),  # audited, not flagged
    ]
    pooled_index = np.array([5, 7, 60_001, 3])  # audited images in train-then-test order
    ranking = np.array([3, 2, 0])  # positions: pooled 3, test 1, train 5
    check = le.public_check(reported, pooled_index, ranking, n_train=60_000, top_k=2)
    assert (check.reported, check.audited, check.flagged, check.in_top_k) == (4, 3, 2, 1)
    assert check.flagged_cases == ["train 5", "test 1"]


def test_reported_cases_match_the_data_files(real_ds):
    cases = le.reported_errors()
    assert cases and all(c.source.startswith("https://") for c in cases)
    assert len({(c.split, c.index) for c in cases}) == len(cases), "one row per case"
    for case in cases:
        labels = real_ds.y_train if case.split == "train" else real_ds.y_test
        assert data.CLASS_NAMES[labels[case.index]] == case.given, case


def _record() -> le.LabelAudit:
    return le.LabelAudit(
        model="mlp", folds=4, epochs=3, batch_size=512, seed=42, n_images=70_000,
        oof_accuracy=0.87, method="both", ranked_by="self_confidence", estimated_errors=1234.5,
        rate=0.0176, rate_low=0.017, rate_high=0.018, level=0.95, flagged=900, flagged_train=800,
        flagged_test=100, calibrated_joint=[[1.0, 2.0], [3.0, 4.0]],
        suspects=[le.Suspect(28264, "train", 28264, "Dress", "Coat", 0.01, 0.97)],
        public_reports=le.PublicCheck(20, 20, 5, 3, 1000, ["train 28264"]),
        normalisation=le.Normalisation(0.87, 0.80, [0.85, 0.87], [0.78, 0.80]),
        seconds=55.0,
    )  # fmt: skip


def test_record_round_trips_through_json():
    record = _record()
    text = json.dumps(record.to_dict())
    assert json.loads(text)["normalisation"]["gain"] == pytest.approx(0.07)
    assert le.LabelAudit.from_dict(json.loads(text)) == record


def test_a_damaged_record_is_refused():
    record = _record().to_dict()
    with pytest.raises(le.LabelAuditError, match="version"):
        le.LabelAudit.from_dict({**record, "version": 0})
    with pytest.raises(le.LabelAuditError, match="damaged"):
        le.LabelAudit.from_dict({k: v for k, v in record.items() if k != "suspects"})


@pytest.mark.parametrize("model", le.LABEL_MODELS)
def test_out_of_fold_scores_every_image_once(model, tmp_path):
    """Tiny real training: every image gets one out-of-fold row, from the fold that held it out."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 6)
    images = (rng.random((60, 28, 28)) * 60 + labels[:, None, None] * 19).astype(np.uint8)
    config = le.FoldConfig(model=model, folds=2, epochs=1, batch_size=16)
    oof = le.out_of_fold(images, labels, config)
    assert oof.probs.shape == (60, 10) and (oof.fold >= 0).all()
    np.testing.assert_allclose(oof.probs.sum(axis=1), 1, atol=1e-4)
    assert len(oof.fold_accuracy) == 2
    assert oof.normalisation is not None and len(oof.normalisation.raw_val) == 1
    record, ranking = le.audit(labels, oof, config, np.arange(60), 40, le.AuditConfig(suspects=3))
    assert record.n_images == 60 and len(record.suspects) <= 3
    assert record.flagged == len(ranking) == record.flagged_train + record.flagged_test
    path = le.save_results(tmp_path, labels, np.arange(60), oof, ranking)
    with np.load(path) as npz:
        assert npz["probs"].shape == (60, 10)
        np.testing.assert_array_equal(npz["ranking_index"], ranking)


def test_reported_table_lists_flagged_cases_first():
    reported = [
        le.Reported("train", 7, "Bag", "index only", "u", ""),  # audited, not flagged
        le.Reported("train", 5, "Shirt", "index only", "u", ""),
        le.Reported("train", 99, "Bag", "index only", "u", ""),  # not audited
    ]
    labels = np.array([6, 8, 0])
    probs = np.full((3, 10), 0.1)
    table = le.reported_table(reported, labels, probs, np.array([5, 7, 3]), np.array([0]), 60_000)
    assert table["index"].tolist() == [5, 7] and table["rank"].tolist() == [1, 0]
    empty = le.reported_table(reported, labels, probs, np.array([1, 2, 3]), np.array([0]), 60_000)
    assert empty.empty and "rank" in empty.columns


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"method": "vote"}, "method='vote': use one of both, prune_by_noise_rate, confusion"),
        ({"ranked_by": "loss"}, "ranked_by='loss': use one of self_confidence"),
        ({"level": 1.0}, r"LEVEL=1.0 must be in \(0, 1\)"),
        ({"replicates": 0}, "REPLICATES=0 must be at least 1"),
        ({"suspects": 0}, "SUSPECTS=0 must be at least 1"),
    ],
)
def test_audit_settings_are_refused_before_any_work(settings, message):
    with pytest.raises(le.LabelAuditError, match=message):
        le.AuditConfig(**settings)
