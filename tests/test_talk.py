"""fmnist_lib.talk: every sentence and speaker note of the talk is computed from the run.

The records are the committed reference run's (`reports/reference_run`), read through the same
files 05_presentation reads, with planted changes: a test changes one number and sees the
sentence that states it change.
"""

from __future__ import annotations

import copy
import re

import pytest

from fmnist_lib import records, reference, report, talk

REF = reference.REFERENCE_DIR


@pytest.fixture(scope="module")
def reference_run():
    metrics = records.read_json(REF / "metrics.json")
    run = records.read_json(REF / "run.json")
    histories = {
        name: records.read_json(REF / "models" / name / "history.json", [])
        for name in metrics["training"]
    }
    return metrics, run, histories


@pytest.fixture
def run_records(reference_run):
    """A private copy to plant values in, with a label audit whose numbers are planted."""
    metrics, run, histories = copy.deepcopy(reference_run)
    metrics["label_errors"] = (  # planted over the reference run's own audit
        {
            "model": "mlp",
            "folds": 4,
            "epochs": 3,
            "n_images": 70_000,
            "oof_accuracy": 0.885,
            "estimated_errors": 2_345,
            "flagged": 2_100,
            "rate": 0.0335,
            "rate_low": 0.031,
            "rate_high": 0.036,
            "level": 0.95,
            "normalisation": {"standardised_accuracy": 0.88, "raw_accuracy": 0.86, "gain": 0.02},
            "calibrated_joint": [
                [500 if (i, j) == (6, 0) else 6000 if i == j else 0 for j in range(10)]
                for i in range(10)
            ],
            "public_reports": {"reported": 20, "audited": 20, "flagged": 15},
        }
    )
    return metrics, run, histories


def notes_of(records_):
    return {key: note.markdown() for key, note in talk.notes(*records_).items()}


def test_the_85_7_percent_is_the_frozen_imagenet_works_never_the_slide_talks(run_records):
    assert talk.EARLIER_RESNET.accuracy == 0.857 and talk.EARLIER_RESNET.whose == "earlier work"
    assert "original talk" not in talk.EARLIER_RESNET.source
    labels = talk.anchor_labels()
    assert labels["ImageNet ResNet50 (earlier work)"] == 0.857
    assert "The slide talk reported no accuracy." in talk.sources_line()
    every = " ".join(notes_of(run_records).values()) + talk.headline_text(run_records[0])
    assert "original talk" not in every


def test_the_insight_names_the_winner_its_margin_and_the_ceiling(run_records):
    metrics = run_records[0]
    text = talk.insight(metrics)
    best, runner = metrics["results"]["best_model"], talk.headline(metrics)["runner_up"]
    margin = -metrics["results"]["uncertainty"]["models"][runner]["against_best"]["difference"]
    assert f"{best} wins by {margin * 100:.2f} points over {runner}, beyond the noise" in text
    per_class = metrics["results"]["models"][best]["per_class"]
    worst = min(per_class, key=lambda c: per_class[c]["recall"])
    assert f"{worst} is the ceiling: {per_class[worst]['recall']:.0%}" in text
    # A changed recall changes the sentence, the headline and its speaker note.
    before = notes_of(run_records)["headline"]
    per_class[worst]["recall"] = 0.5
    assert "50%" in talk.insight(metrics) and "50%" in talk.headline_text(metrics)
    assert notes_of(run_records)["headline"] != before


def test_a_tie_is_called_a_tie(run_records):
    metrics = run_records[0]
    sure = metrics["results"]["uncertainty"]
    sure["tied_with_best"] = ["mlp"]
    assert "tie at the top (within the noise)" in talk.insight(metrics)


def test_shared_confusion_needs_both_the_clusters_and_the_mistakes(run_records):
    metrics = run_records[0]
    shared = talk.shared_confusion(metrics)
    assert shared  # the reference run: k-means merges tops the cnn confuses
    metrics["eda"]["merged_classes"] = [["Sandal", "Sneaker"]]
    assert talk.shared_confusion(metrics) == []
    assert "merges" not in talk.insight(metrics)


def test_every_claim_of_the_slide_talk_gets_a_verdict(run_records):
    found = talk.verdicts(*run_records)
    assert len(found) == 8
    assert {v.verdict for v in found} <= {talk.CONFIRMED, talk.PARTLY, talk.REFUTED}
    by_slide = {v.slide: v for v in found}
    assert (
        by_slide["data"].verdict == talk.CONFIRMED and "70,000 images" in by_slide["data"].evidence
    )
    assert by_slide["outliers"].verdict == talk.REFUTED
    assert "3.4% of labels wrong" in by_slide["outliers"].evidence
    table = talk.verdict_table(found)
    assert list(table.columns) == ["the slide talk said", "verdict", "this run found"]
    counts = talk.scorecard_line(found)
    assert re.fullmatch(
        r"Of the slide talk's 8 claims, \d hold, \d hold in part and \d do not\.", counts
    )


@pytest.mark.parametrize(
    ("standardised", "raw", "verdict"),
    [(0.88, 0.80, talk.CONFIRMED), (0.861, 0.86, talk.PARTLY), (0.80, 0.88, talk.REFUTED)],
)
def test_normalisation_is_judged_by_its_measured_effect_against_the_noise(
    run_records, standardised, raw, verdict
):
    metrics = run_records[0]
    metrics["label_errors"]["normalisation"].update(
        standardised_accuracy=standardised, raw_accuracy=raw
    )
    (v,) = talk.verdict_for(talk.verdicts(*run_records), "statistics")
    assert v.verdict == verdict
    assert f"{standardised:.2%} standardised against {raw:.2%}" in v.evidence
    assert f"{(standardised - raw) * 100:+.2f} points" in v.evidence


def test_predictions_shown_all_right_are_only_partly_the_claim(run_records):
    metrics = run_records[0]
    shown = metrics["results"]["sample_predictions"]
    (v,) = talk.verdict_for(talk.verdicts(*run_records), "predictions")
    right = sum(row["correct"] for row in shown)
    assert v.verdict == (talk.REFUTED if right < len(shown) else talk.PARTLY)
    assert f"{right} of {len(shown)} seeded test images right" in v.evidence
    for row in shown:
        row["correct"] = True
    (v,) = talk.verdict_for(talk.verdicts(*run_records), "predictions")
    assert v.verdict == talk.PARTLY


def test_the_curves_verdict_reads_the_mlps_history(run_records):
    metrics, run, histories = run_records
    facts = talk.curve_facts(histories["mlp"])
    (speed, curves) = talk.verdict_for(talk.verdicts(*run_records), "curves")
    assert f"{facts['first_val']:.2%} on validation after epoch 1" in speed.evidence
    assert f"climbs to {facts['last_train']:.2%}" in curves.evidence
    # A history without the gap: the verdict changes with it.
    for row in histories["mlp"]:
        row["accuracy"] = row["val_accuracy"]
    (_, curves) = talk.verdict_for(talk.verdicts(*run_records), "curves")
    assert curves.verdict == talk.CONFIRMED and "overfits" not in curves.evidence


def test_frozen_random_features_against_the_earlier_imagenet_figure(run_records):
    metrics = run_records[0]
    resnet = metrics["training"]["resnet50"]
    resnet["weights_label"] = "frozen random features (control, not transfer)"
    resnet["accuracy"] = 0.8752
    line = talk.earlier_resnet_line(metrics)
    assert "Frozen *random* ResNet50 features reach 87.52%, 1.82 points above" in line
    assert "no evidence that ImageNet features help" in line
    resnet["accuracy"] = 0.85
    assert "below" in talk.earlier_resnet_line(metrics)
    assert "no evidence" not in talk.earlier_resnet_line(metrics)


def test_notes_are_computed_and_fit_a_ten_minute_talk(run_records):
    said = talk.notes(*run_records)
    assert sum(n.seconds for n in said.values()) <= talk.TALK_MINUTES * 60
    assert all(n.say for n in said.values())
    assert all(bool(n.question) == bool(n.answer) for n in said.values())
    before = notes_of(run_records)
    run_records[0]["eda"]["kmeans_nmi"] = 0.123
    after = notes_of(run_records)
    assert "0.12" in after["clustering"] and after["clustering"] != before["clustering"]
    run_records[0]["label_errors"]["rate"] = 0.0512
    assert "5.1% of labels wrong" in notes_of(run_records)["outliers"]


def test_every_slide_of_the_deck_has_its_note(run_records):
    import nbformat

    from fmnist_lib import config

    nb = nbformat.read(config.NOTEBOOKS_DIR / "05_presentation.ipynb", as_version=4)
    keys = re.findall(r'said\["(\w+)"\]', "".join(c.source for c in nb.cells))
    assert sorted(keys) == sorted(talk.notes(*run_records))


def test_comparison_table_speaks_in_points(run_records):
    table = talk.comparison_table(run_records[0])
    against = run_records[0]["results"]["uncertainty"]["models"]["mlp"]["against_best"]
    assert table.loc["mlp", "vs best"] == f"{against['difference'] * 100:+.2f} points (worse)"
    assert "%" not in table.loc["mlp", "vs best"]
    assert table.loc["resnet50", "trains"].endswith(f"of {24_123_018 / 1e6:.2f}M")


def test_layers_table_adds_up_to_the_models_total():
    entry = {
        "params": 288 + 128 + 1290,
        "layers": [
            {"layer": n, "type": t, "output shape": "(batch, 8)", "parameters": p}
            for n, t, p in [
                ("image", "InputLayer", 0),
                ("conv_1", "Conv2D", 288),
                ("bn_1", "BatchNormalization", 128),
                ("relu_1", "ReLU", 0),
                ("pool", "MaxPooling2D", 0),
                ("softmax", "Dense", 1290),
            ]
        ],
    }
    table, left_out = talk.layers_table(entry)
    assert table["layer"].tolist() == ["conv_1", "softmax", "1 × batch norm", "total"]
    assert table["parameters"].tolist() == ["288", "1,290", "128", "1,706"]
    assert left_out == "Layers without parameters, not listed: MaxPooling2D, ReLU."
    entry["params"] += 1
    with pytest.raises(ValueError, match="add up to 1,706, the model has 1,707"):
        talk.layers_table(entry)


def test_the_system_marks_what_is_planned(run_records):
    metrics, run, _ = run_records
    stages = {s["title"]: s for s in talk.system_stages(run, metrics)}
    assert stages["retrain trigger"]["kind"] == "planned"
    assert stages["retrain trigger"]["to"] == ["train"]
    assert stages["evaluate"]["to"] == ["model.keras"]
    assert stages["model.keras"]["lines"][0] == f"best: {metrics['results']['best_model']}"
    assert "drift is watched" not in talk.system_text(metrics, run)
    metrics["training"][metrics["results"]["best_model"]]["inference"] = {
        "ms_per_image_batch1": 1.25,
        "images_per_second": 40_000,
        "ms_per_image_large_batch": 0.02,
        "large_batch": 1024,
    }
    assert "1.2 ms an image" in talk.system_text(metrics, run)
    stages = {s["title"]: s for s in talk.system_stages(run, metrics)}
    assert stages["predict"]["lines"][:2] == ["1.2 ms an image", "40,000 images/s"]


def test_method_labels_are_honest(run_records):
    resnet = run_records[0]["training"]["resnet50"]
    assert "not transfer" in report.method_label(resnet)


def test_the_label_audit_feeds_the_outliers_slide_and_the_conclusion(run_records):
    metrics, run, histories = run_records
    audit = metrics["label_errors"]
    assert talk.worst_label_cell(audit) == ("Shirt", "T-shirt/top", 500)
    assert talk.most_mislabelled_class(audit) == ("Shirt", 500)
    text = talk.label_audit_text(metrics)
    assert "the largest group is labelled Shirt, truly T-shirt/top (about 500)" in text
    assert "Of 20 mislabelled images reported publicly, it flags **15**" in text
    third = talk.takeaways(metrics, talk.verdicts(*run_records))[2]
    hardest = talk.ceiling_class(metrics)[0]
    assert hardest == "Shirt" and "Shirt, the hardest class, carries the most of them" in third
    # Another class's labels worst: the conclusion no longer ties them to the hardest class.
    audit["calibrated_joint"][6][0], audit["calibrated_joint"][3][0] = 0, 700
    third = talk.takeaways(metrics, talk.verdicts(*run_records))[2]
    assert "hardest class" not in third and "2,100 images flagged for review" in third
