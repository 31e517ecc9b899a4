"""fmnist_lib.report: comparison, anchors, predictions and learned features on planted data."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from fmnist_lib import report
from fmnist_lib.data import CLASS_NAMES


def planted_predictions() -> report.Predictions:
    """Ten images, one per class; image 3 is wrongly called class 4 with 90% confidence."""
    y = np.arange(10)
    proba = np.full((10, 10), 0.02)
    proba[y, y] = 0.82
    proba[3] = 0.01
    proba[3, 4], proba[3, 3] = 0.90, 0.02
    proba[5] = 0.05
    proba[5, 6], proba[5, 5] = 0.30, 0.25  # a hesitant mistake
    proba /= proba.sum(axis=1, keepdims=True)
    return report.Predictions("mlp", proba, y, np.arange(100, 110))


def test_anchors_are_quoted_with_sources_and_never_ours():
    table = report.anchors_table({"cnn": 0.91})
    assert table.loc["cnn (this run)", "whose"] == "ours"
    quoted = table[table["whose"] != "ours"]
    assert len(quoted) == len(report.ANCHORS) == 4
    # Every source names a repository file or a paper, never an issue of ours.
    assert all(
        re.search(r"arXiv:\d{4}\.\d{4,5}|github\.com/|earlier ResNet50 transfer work", s)
        for s in quoted["source"]
    )
    assert not quoted["source"].str.contains("issue").any()
    # The table quotes each anchor's figure unchanged and sorts every row, ours included.
    assert dict(zip(quoted.index, quoted["accuracy"], strict=True)) == {
        a.name: a.accuracy for a in report.ANCHORS
    }
    assert table["accuracy"].is_monotonic_decreasing
    above = table.index[: table.index.get_loc("cnn (this run)")]
    assert set(above) == {a.name for a in report.ANCHORS if a.accuracy > 0.91}
    # The frozen-ImageNet ResNet50 work's 85.7% stays, labelled as that work's (not the
    # slide talk's).
    assert table.loc[table["whose"] == "earlier work", "accuracy"].tolist() == [0.857]
    assert table.loc[table["accuracy"] == 0.857, "whose"].item() == "earlier work"
    assert (quoted["whose"] == "published").sum() == 3
    assert list(table["accuracy"]) == sorted(table["accuracy"], reverse=True)


def test_accuracy_interval_is_wilson():
    correct = np.r_[np.ones(9000, bool), np.zeros(1000, bool)]
    low, high = report.accuracy_interval(correct)
    # Wilson at 90% of 10,000: 0.9 -/+ 1.96 * sqrt(0.09 / 10000) to four decimals.
    assert low == pytest.approx(0.8940, abs=1e-4) and high == pytest.approx(0.9058, abs=1e-4)


def test_paired_difference_calls_a_tie_inside_the_noise():
    rng = np.random.default_rng(0)
    a = rng.random(10_000) < 0.93
    b = a.copy()
    b[np.flatnonzero(a)[:22]] = False  # b loses 22 images a gets right
    b[np.flatnonzero(~a)[:18]] = True  # and wins 18 that a gets wrong
    tie = report.paired_difference(a, b)
    assert tie["verdict"] == "tie" and tie["low"] < 0 < tie["high"]
    b = a.copy()
    b[np.flatnonzero(a)[:200]] = False  # b loses 200 images a gets right
    clear = report.paired_difference(a, b)
    assert clear["verdict"] == "better" and clear["difference"] == pytest.approx(0.02)
    assert report.paired_difference(b, a)["verdict"] == "worse"


def test_uncertainty_names_the_models_tied_with_the_best():
    y = np.arange(1000) % 10
    right = np.eye(10)[y]
    wrong = np.eye(10)[(y + 1) % 10]

    def pred(n_wrong):
        proba = right.copy()
        proba[:n_wrong] = wrong[:n_wrong]
        return report.Predictions("m", proba, y, np.arange(1000))

    sure = report.uncertainty({"a": pred(50), "b": pred(52), "c": pred(150)}, "a")
    assert sure["tied_with_best"] == ["b"]
    assert sure["models"]["c"]["against_best"]["verdict"] == "worse"
    assert "against_best" not in sure["models"]["a"]


def test_best_epoch_beside_the_last():
    history = [{"val_accuracy": v} for v in (0.8, 0.9, 0.85)] + [{"accuracy": 0.99}]
    assert report.best_epoch(history) == {
        "best_epoch": 2,
        "best_val_accuracy": 0.9,
        "last_epoch": 4,
        "last_val_accuracy": 0.85,
    }
    assert report.best_epoch([{"accuracy": 1.0}])["best_epoch"] is None


def test_outliers_in_test_counts_the_model_mistakes_among_them():
    pred = planted_predictions()  # test positions 100..109; rows 3 and 5 are wrong
    both = [7, 60_103, 60_104, 60_105, 60_999]  # a train image, three in this run, one not
    found = report.outliers_in_test(both, 60_000, pred)
    assert found["agreed"] == 3 and found["wrong"] == 2
    assert found["rows"] == [3, 4, 5] and found["wrong_rows"] == [3, 5]


def test_comparison_table_and_best_model():
    trained = {
        "mlp": {"accuracy": 0.88, "macro_f1": 0.87, "params": 10, "weights_used": None},
        "resnet50": {
            "accuracy": 0.90,
            "macro_f1": 0.89,
            "weights_used": "imagenet",
            "fine_tune": "frozen",
            "image_size": 32,
        },
        "cnn": {"accuracy": 0.90, "macro_f1": 0.90},
    }
    table = report.comparison_table(trained)
    assert list(table.index) == ["mlp", "resnet50", "cnn"]
    assert table.loc["resnet50", "weights used"] == "imagenet"
    assert table.loc["mlp", "fine-tune"] == "-"
    assert table.loc["mlp", "method"] == "trained from scratch"
    assert table.loc["resnet50", "method"] == "weights imagenet, stage frozen"  # pre-label run
    labelled = {"weights_used": "random", "weights_label": "frozen random features (control)"}
    assert report.method_label(labelled) == "frozen random features (control)"
    assert report.best_model(table) == "cnn"  # tie on accuracy, broken by macro F1
    html = report.style_comparison(table, "cnn").to_html()
    rule = re.search(r"</?style[^>]*>(.*?)</style>", html, re.S).group(1)
    highlighted = re.search(r"([^}]*)\{[^}]*#c6efce", rule).group(1)
    assert set(re.findall(r"_row(\d+)_col", highlighted)) == {"2"}  # only the best row


def test_misclassified_most_confident_first():
    pred = planted_predictions()
    assert list(report.misclassified(pred, 5)) == [3, 5]
    assert list(report.misclassified(pred, 1)) == [3]
    assert report.mistake_captions(pred, [3])[0].startswith(f"{CLASS_NAMES[3]}\n→ {CLASS_NAMES[4]}")


def test_top_k_and_prediction_table():
    pred = planted_predictions()
    classes, probs = report.top_k(pred.proba, 3)
    assert classes[3, 0] == 4 and classes[0, 0] == 0
    assert np.all(np.diff(probs, axis=1) <= 0)
    table = report.prediction_table(pred, np.array([0, 3]))
    assert list(table["test image"]) == [100, 103]
    assert list(table["correct"]) == [True, False]
    assert table.loc[1, "predicted"] == CLASS_NAMES[4] and table.loc[1, "top 1"].endswith("%")


def test_fixed_sample_is_seeded_and_covers_every_class():
    y = np.repeat(np.arange(10), 20)
    a, b = report.fixed_sample(y, 2, seed=1), report.fixed_sample(y, 2, seed=1)
    assert np.array_equal(a, b) and len(a) == 20
    assert np.array_equal(np.bincount(y[a]), np.full(10, 2))
    assert not np.array_equal(a, report.fixed_sample(y, 2, seed=2))


def test_model_scores():
    scores = report.model_scores(planted_predictions())
    assert scores["accuracy"] == pytest.approx(0.8) and scores["misclassified"] == 2
    # Three confidence levels, each in its own bin: 8 right at 0.82, one wrong at 0.90, one
    # wrong at 0.30 / 0.95; the ECE is the count-weighted gap between confidence and accuracy.
    expected = 0.8 * (1 - 0.82) + 0.1 * 0.90 + 0.1 * (0.30 / 0.95)
    assert scores["ece"] == pytest.approx(expected)
    assert scores["confused_pairs"][0]["count"] == 1
    assert set(scores["per_class"]) == set(CLASS_NAMES)


def test_penultimate_features_and_layer_table():
    import keras

    from fmnist_lib import models

    mlp = models.build_mlp(hidden=(8, 4))
    x = np.random.default_rng(0).normal(size=(5, 28, 28)).astype("float32")
    assert report.penultimate_features(mlp, x).shape == (5, 4)
    # A nested head, as in the ResNet50 model: input -> trunk -> head model.
    head = models.build_head(features=6, hidden=3)
    inputs = keras.Input(shape=(2,))
    nested = keras.Model(inputs, head(keras.layers.Dense(6, name="trunk")(inputs)))
    assert report.penultimate_features(nested, np.ones((4, 2), "float32")).shape == (4, 3)
    layers = report.layer_table(mlp)
    assert list(layers["layer"]) == ["image", "flatten", "dense_1", "dense_2", "softmax"]
    assert layers["parameters"].sum() == mlp.count_params()
    assert isinstance(layers, pd.DataFrame)


def test_penultimate_features_of_a_mixed_precision_model_are_float32():
    """A bfloat16 model (the accelerator recipe) once broke 04_results: scikit-learn refuses
    NumPy's bfloat16 arrays."""
    import keras

    from fmnist_lib import eda, models

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        mlp = models.build_mlp(hidden=(8, 4))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    x = np.random.default_rng(0).normal(size=(30, 28, 28)).astype("float32")
    assert mlp.predict(x, verbose=0).dtype == np.float32  # the softmax is float32 anyway
    features = report.penultimate_features(mlp, x)
    assert features.dtype == np.float32
    assert eda.umap_embedding(features, seed=0, n_neighbors=5).shape == (30, 2)


def test_learned_features_cluster_better_than_noise():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 30)
    separated = np.eye(10)[labels] * 5 + rng.normal(scale=0.3, size=(300, 10))
    noise = rng.normal(size=(300, 10))
    assert report.feature_clusters(separated, labels, 0)["nmi"] > 0.95
    assert report.feature_clusters(noise, labels, 0)["nmi"] < 0.3


def test_cost_table_reads_recorded_costs_and_says_what_was_not_measured():
    from fmnist_lib import evaluate

    cost = evaluate.InferenceCost(2.0, 0.25, 1024, 4000.0, 5, "median")
    trained = {
        "cnn": {
            "accuracy": 0.93,
            "params": 391_082,
            "trainable_params": 390_634,
            "train_seconds": 529.4,
            "model_bytes": 4_700_000,
            "inference": cost.to_dict(),
        },
        "mlp": {"accuracy": 0.90, "params": 535_818, "train_seconds": 47.2},  # an older run
        "resnet50": {"accuracy": 0.87, "params": 24_123_018, "inference": {"ms": 1}},
    }
    table = report.cost_table(trained)
    assert table.loc["cnn", "ms/image, large batch"] == 0.25
    assert table.loc["cnn", "images/s"] == 4000.0 and table.loc["cnn", "large batch"] == 1024
    assert table.loc["cnn", "model file (MB)"] == pytest.approx(4.7)
    assert table.loc["cnn", "trainable parameters"] == 390_634
    for column in ("trainable parameters", "ms/image, batch 1", "model file (MB)"):
        assert table.loc["mlp", column] == report.NOT_MEASURED
    assert table.loc["mlp", "train time (s)"] == 47.2
    assert table.loc["resnet50", "ms/image, batch 1"] == report.DAMAGED
    assert table.loc["resnet50", "train time (s)"] == report.NOT_MEASURED
    html = report.style_costs(table).to_html()
    assert "391,082" in html and "not measured" in html and "0.25" in html


def test_cost_chart_plots_measured_models_and_names_the_rest():
    from fmnist_lib import evaluate, plots

    cost = evaluate.InferenceCost(2.0, 0.25, 1024, 4000.0, 5, "median")
    trained = {
        "mlp": {"accuracy": 0.90, "params": 535_818, "train_seconds": 47.2},
        "resnet50": {
            "accuracy": 0.87,
            "params": 24_123_018,
            "trainable_params": 535_306,
            "train_seconds": 149.3,
            "inference": cost.to_dict(),
        },
    }
    accuracy = {"mlp": (0.90, 0.89, 0.91), "resnet50": (0.87, 0.86, 0.88)}
    with plots.slide_style():
        fig = plots.cost_chart(report.cost_table(trained), accuracy)
    texts = {t.get_text() for t in fig.findobj(plots.plt.Text) if t.get_text()}
    assert "resnet50, 24.1M params\n(535k trained)" in texts  # the frozen backbone, said
    assert "mlp, 536k params" in texts and "not measured: mlp" in texts
    sizes = [t.get_fontsize() for t in fig.findobj(plots.plt.Text) if t.get_text()]
    assert min(sizes) >= 14
    plots.plt.close(fig)


def test_cost_summary_is_formatted_from_the_table():
    from fmnist_lib import evaluate

    def timed(ms):
        return evaluate.InferenceCost(1.0, ms, 1024, 1000 / ms, 5, "median").to_dict()

    trained = {
        "cnn": {"params": 391_082, "trainable_params": 390_634, "inference": timed(0.5)},
        "mlp": {"params": 535_818, "trainable_params": 535_818, "inference": timed(0.1)},
        "resnet50": {"params": 24_123_018, "trainable_params": 531_210, "inference": timed(3.0)},
    }
    assert report.cost_summary(report.cost_table(trained), "cnn") == (
        "cnn, the most accurate model, needs 0.5 ms per image at a batch of 1,024, 5.0 times "
        "mlp's 0.1 ms. resnet50 trains 531,210 of its 24,123,018 parameters (2.2%): the rest "
        "is frozen."
    )
    older = {name: {"params": m["params"]} for name, m in trained.items()}
    assert report.cost_summary(report.cost_table(older), "cnn") == (
        "Inference time was not measured for every model in this run."
    )
