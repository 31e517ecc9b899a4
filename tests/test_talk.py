"""fmnist_lib.talk: every sentence of the talk is computed from the run, honestly worded."""

from __future__ import annotations

import copy

import pytest

from fmnist_lib import talk


def metrics_fixture() -> dict:
    """The fields the talk reads, with planted values (cnn best, resnet50 tied with it)."""

    def model(acc, seconds, label=None, used=None):
        return {
            "accuracy": acc,
            "n": 10_000,
            "params": 1234,
            "epochs": 5,
            "train_seconds": seconds,
            "n_train": 54_000,
            "image_size": 28,
            "weights_label": label,
            "weights_used": used,
            "device": {"cpu": "AMD EPYC", "cpu_count": 2},
            "train_config": {"batch_size": 128, "optimizer": "adam", "learning_rate": 0.001},
            "parameters": {"AUGMENT": "flip+shift", "TTA": True},
        }

    resnet = "frozen random features (control, not transfer)"
    return {
        "eda": {
            "kmeans_recovered": ["Trouser", "Bag", "Ankle boot"],
            "kmeans_nmi": 0.511,
            "merged_classes": [["Pullover", "Coat", "Shirt"], ["Sandal", "Sneaker"]],
            "pixel_range": {"out_of_range": 0, "blank": 0, "flat": 0},
            "outliers_flagged": 1635,
            "outliers": {"both": {"total": 73}},
            "pixel_mean": 72.94,
            "pixel_std": 90.02,
        },
        "preprocessing": {"n_train": 54_000, "n_val": 6_000, "n_test": 10_000},
        "training": {
            "mlp": model(0.8912, 60.0),
            "cnn": model(0.9289, 300.0),
            "resnet50": model(0.9271, 900.0, resnet, "random"),
        },
        "results": {
            "best_model": "cnn",
            "uncertainty": {
                "level": 0.95,
                "models": {
                    "cnn": {"accuracy": 0.9289, "low": 0.9237, "high": 0.9338},
                    "mlp": {
                        "low": 0.885,
                        "high": 0.897,
                        "against_best": {"difference": -0.0377, "verdict": "worse"},
                    },
                    "resnet50": {
                        "low": 0.922,
                        "high": 0.932,
                        "against_best": {"difference": -0.0018, "verdict": "tie"},
                    },
                },
                "tied_with_best": ["resnet50"],
            },
            "best_epochs": {
                "mlp": {
                    "best_epoch": 3,
                    "last_epoch": 5,
                    "best_val_accuracy": 0.9,
                    "last_val_accuracy": 0.89,
                },
                "cnn": {"best_epoch": 5, "last_epoch": 5},
                "resnet50": {"best_epoch": 5, "last_epoch": 5},
            },
            "outliers_in_test": {"agreed": 11, "wrong": 4},
        },
    }


def test_the_headline_calls_a_tie_inside_the_noise():
    text = talk.headline_text(metrics_fixture())
    assert "cnn: **92.89%** on 10,000 test images" in text
    assert "95% interval 92.37% – 93.38%" in text
    assert "Within the noise of resnet50: a **tie**, not a win." in text
    assert "Original talk: 85.70% · human: 83.50% · state of the art: 96.91%" in text
    assert "300 s of training on AMD EPYC, 2 cores" in text


def test_the_headline_says_when_the_ranking_holds():
    metrics = metrics_fixture()
    metrics["results"]["uncertainty"]["tied_with_best"] = []
    assert "the ranking holds" in talk.headline_text(metrics)


def test_verdicts_answer_the_original_talk_with_numbers():
    m = metrics_fixture()
    clustering = talk.clustering_verdict(m["eda"])
    assert "recovers **3 of 10** classes (Trouser, Bag, Ankle boot; NMI 0.51)" in clustering
    assert "clusters merge Pullover + Coat + Shirt; Sandal + Sneaker" in clustering
    outliers = talk.outlier_verdict(m["eda"], m["results"])
    assert "pixel-range check finds none" in outliers
    assert "**1,635** flagged, the two detectors agree on **73**" in outliers
    assert "11 of those are test images and cnn gets **4** of them wrong" in outliers
    assert "mislabel" not in outliers


def test_a_random_resnet50_is_never_called_transfer():
    first, second, third = talk.takeaways(metrics_fixture())
    assert "tied with resnet50" in first and "+7.2 points" in first
    assert "frozen random features (control, not transfer): 92.71%" in second
    assert "not a transfer result" in second
    assert "recovers 3 of 10 classes" in third and "73 images" in third
    m = metrics_fixture()
    m["training"]["resnet50"]["weights_label"] = "ImageNet transfer, frozen backbone"
    assert "not a transfer result" not in talk.takeaways(m)[1]


def test_epochs_note_reports_the_best_epoch_beside_the_last():
    note = talk.epochs_note(metrics_fixture())
    assert "last epoch's weights" in note
    assert "mlp peaked at epoch 3 of 5 (90.00% → 89.00% on validation)" in note
    assert "cnn peaked" not in note


def test_comparison_and_recipe_tables():
    table = talk.comparison_table(metrics_fixture())
    assert table.loc["resnet50", "vs best"] == "-0.18% (tie)"
    assert (
        table.loc["cnn", "vs best"] == "best" and table.loc["mlp", "best / last epoch"] == "3 / 5"
    )
    recipe = talk.recipe_table(metrics_fixture()["training"])
    assert recipe.loc["cnn", "augmentation"] == "flip+shift"
    assert recipe.loc["cnn", "test-time flip"] == "yes"


def test_system_stages_come_from_the_run():
    run = {"steps": [{"name": "01_eda", "status": "done"}], "data": {"files": {"a": {}, "b": {}}}}
    stages = talk.system_stages(run, metrics_fixture())
    by_title = {s["title"]: s for s in stages}
    assert by_title["IDX files"]["lines"][0] == "2 files, MD5"
    assert by_title["model.keras"]["lines"][:2] == ["best: cnn", "one per model (3)"]
    assert by_title["evaluate"]["lines"][2] == "steps done: 1"
    assert by_title["monitor"]["lines"][0] == "pixel mean 72.9"
    assert by_title["evaluate"]["to"] == ["model.keras"]


@pytest.mark.parametrize("key", ["kmeans_recovered", "outliers_flagged"])
def test_a_run_without_the_evidence_fails_loudly(key):
    m = copy.deepcopy(metrics_fixture())
    del m["eda"][key]
    with pytest.raises(KeyError, match=key):
        talk.takeaways(m) if key == "kmeans_recovered" else talk.outlier_verdict(
            m["eda"], m["results"]
        )


def test_layers_table_keeps_the_layers_that_shape_the_model():
    entry = {
        "layers": [
            {"layer": n, "type": t, "output shape": "(batch, 8)", "parameters": p}
            for n, t, p in [
                ("image", "InputLayer", 0),
                ("conv_1", "Conv2D", 288),
                ("bn_1", "BatchNormalization", 128),
                ("relu_1", "ReLU", 0),
                ("softmax", "Dense", 1290),
            ]
        ]
    }
    table = talk.layers_table(entry)
    assert table["layer"].tolist() == ["conv_1", "softmax"]
    assert table["parameters"].tolist() == ["288", "1,290"]
