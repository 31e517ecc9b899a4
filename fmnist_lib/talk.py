"""What the talk says, computed from a run: the headline, a verdict on each claim of the
original talk, the recipe, the system design, the takeaways and the speaker notes.

Every sentence here is formatted from `metrics.json` and `run.json`; `05_presentation` shows
them, one call per slide element.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from fmnist_lib import report

ORIGINAL_TALK = next(a for a in report.ANCHORS if a.whose == "original talk")
HUMAN = next(a for a in report.ANCHORS if a.name.startswith("Human"))
STATE_OF_THE_ART = max(report.ANCHORS, key=lambda a: a.accuracy)


def pct(x: float) -> str:
    """An accuracy as a percentage with two decimals."""
    return f"{x:.2%}"


def device_label(entry: dict[str, Any]) -> str:
    """Where a model trained, in words: the accelerator, else the CPU and its cores."""
    device = entry.get("device") or {}
    if device.get("device_kind"):
        return device["device_kind"]
    cores = device.get("cpu_count")
    return f"{device.get('cpu') or 'CPU'}" + (f", {cores} cores" if cores else "")


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The best model, its accuracy with its interval, its cost, and who ties with it."""
    results, trained = metrics["results"], metrics["training"]
    best = results["best_model"]
    sure = results["uncertainty"]
    entry = trained[best]
    return {
        "best": best,
        "accuracy": entry["accuracy"],
        "low": sure["models"][best]["low"],
        "high": sure["models"][best]["high"],
        "level": sure["level"],
        "n": entry["n"],
        "train_seconds": entry["train_seconds"],
        "params": entry["params"],
        "device": device_label(entry),
        "method": report.method_label(entry),
        "ties": sure["tied_with_best"],
    }


def headline_text(metrics: dict[str, Any]) -> str:
    """The headline slide's lines (Markdown)."""
    h = headline(metrics)
    tie = (
        f"Within the noise of {', '.join(h['ties'])}: a **tie**, not a win."
        if h["ties"]
        else "Every other model is below its interval: the ranking holds."
    )
    return (
        f"### {h['best']}: **{pct(h['accuracy'])}** on {h['n']:,} test images\n\n"
        f"- {h['level']:.0%} interval {pct(h['low'])} – {pct(h['high'])}. {tie}\n"
        f"- Cost: {h['train_seconds']:,.0f} s of training on {h['device']}, "
        f"{h['params']:,} parameters\n"
        f"- Original talk: {pct(ORIGINAL_TALK.accuracy)} · human: {pct(HUMAN.accuracy)} · "
        f"state of the art: {pct(STATE_OF_THE_ART.accuracy)}"
    )


def comparison_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """One row per model: accuracy with interval, against the best, best and last epoch."""
    results, trained = metrics["results"], metrics["training"]
    sure = results["uncertainty"]
    rows = []
    for name, entry in trained.items():
        s = sure["models"][name]
        against = s.get("against_best")
        epochs = results["best_epochs"].get(name, {})
        rows.append(
            {
                "model": name,
                "how it was trained": report.method_label(entry),
                "test accuracy": pct(entry["accuracy"]),
                f"{sure['level']:.0%} interval": f"{pct(s['low'])} – {pct(s['high'])}",
                "vs best": (
                    f"{against['difference']:+.2%} ({against['verdict']})" if against else "best"
                ),
                "best / last epoch": f"{epochs.get('best_epoch') or '-'} / "
                f"{epochs.get('last_epoch', entry['epochs'])}",
                "train time": f"{entry['train_seconds']:,.0f} s",
            }
        )
    return pd.DataFrame(rows).set_index("model")


def epochs_note(metrics: dict[str, Any]) -> str:
    """Which weights the reported accuracy uses, and where validation peaked earlier."""
    late = [
        f"{name} peaked at epoch {e['best_epoch']} of {e['last_epoch']} "
        f"({e['best_val_accuracy']:.2%} → {e['last_val_accuracy']:.2%} on validation)"
        for name, e in metrics["results"]["best_epochs"].items()
        if e.get("best_epoch") and e["best_epoch"] < e["last_epoch"]
    ]
    text = "Test accuracy is that of the last epoch's weights (no best-epoch restore)."
    return text + (" " + "; ".join(late) + "." if late else "")


def recipe_table(trained: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """How each model was trained: epochs, batch, optimiser, augmentation, TTA, smoothing."""
    rows = []
    for name, entry in trained.items():
        cfg, params = entry.get("train_config", {}), entry.get("parameters", {})
        rows.append(
            {
                "model": name,
                "epochs": entry["epochs"],
                "batch": cfg.get("batch_size"),
                "optimiser": f"{cfg.get('optimizer', '?')} {cfg.get('learning_rate', 0):g}",
                "augmentation": params.get("AUGMENT", "none"),
                "test-time flip": "yes" if params.get("TTA") else "no",
                "label smoothing": f"{cfg.get('label_smoothing', 0):g}",
                "images": f"{entry['n_train']:,}",
            }
        )
    return pd.DataFrame(rows).set_index("model")


SHAPING_LAYERS = ("BatchNormalization", "ReLU", "Activation", "InputLayer")


def layers_table(entry: dict[str, Any], limit: int = 10) -> pd.DataFrame:
    """A model's top-level layers as recorded by `03_training`, without the normalisation and
    activation layers between them (at most `limit` rows)."""
    table = pd.DataFrame(entry.get("layers", []))
    if table.empty:
        return table
    table = table[~table["type"].isin(SHAPING_LAYERS)]
    table = table[["layer", "type", "output shape", "parameters"]]
    table["parameters"] = table["parameters"].map("{:,}".format)
    return table.head(limit)


# --- verdicts on the original talk's claims ------------------------------------------------


def clustering_verdict(eda: dict[str, Any]) -> str:
    """The original talk dismissed clustering; what k-means on pixels actually recovers."""
    recovered = eda["kmeans_recovered"]
    merged = [" + ".join(g) for g in eda["merged_classes"]]
    return (
        f"**Clustering:** k-means on pixels recovers **{len(recovered)} of 10** classes "
        f"({', '.join(recovered) or 'none'}; NMI {eda['kmeans_nmi']:.2f}); clusters merge "
        f"{'; '.join(merged[:3])}. Not useless, not a classifier."
    )


NMI_LINE = (
    "NMI (normalised mutual information): how much knowing the cluster tells you about the "
    "class, from 0 (nothing) to 1 (the clusters are the classes)."
)


def outlier_verdict(eda: dict[str, Any], results: dict[str, Any]) -> str:
    """The original talk claimed no outliers; what the pixel check and the detectors find."""
    pixel = eda["pixel_range"]
    bad = sum(pixel.values())
    test = results["outliers_in_test"]
    return (
        f"**Outliers:** the pixel-range check finds {bad or 'none'}, but shape outliers exist: "
        f"**{eda['outliers_flagged']:,}** flagged, the two detectors agree on "
        f"**{eda['outliers']['both']['total']}**; {test['agreed']} of those are test images and "
        f"{results['best_model']} gets **{test['wrong']}** of them wrong. Ambiguous or atypical "
        f"products, not proven label errors."
    )


def uncertainty_line(metrics: dict[str, Any]) -> str:
    """How the intervals are computed, in one line."""
    sure = metrics["results"]["uncertainty"]
    n = metrics["training"][metrics["results"]["best_model"]]["n"]
    return (
        f"{sure['level']:.0%} intervals on {n:,} test images: Wilson for one model, paired "
        f"differences for two (a tie when the interval of the difference contains 0). One seed."
    )


# --- the system ----------------------------------------------------------------------------


def system_stages(run: dict[str, Any], metrics: dict[str, Any]) -> list[dict]:
    """The ML system as the run actually executed it: `plots.system_flow`'s input."""
    eda, prep = metrics.get("eda", {}), metrics.get("preprocessing", {})
    trained, results = metrics.get("training", {}), metrics.get("results", {})
    best = results.get("best_model", next(iter(trained), "?"))
    files = run.get("data", {}).get("files", {})
    steps = [s for s in run.get("steps", []) if s.get("status") == "done"]
    mean, std = eda.get("pixel_mean", float("nan")), eda.get("pixel_std", float("nan"))
    done = {s["name"] for s in steps}
    return [
        {
            "title": "IDX files",
            "lines": [f"{len(files) or 4} files, MD5", "verified on load", "70,000 images"],
            "row": 0,
            "kind": "data",
        },
        {
            "title": "split + scale",
            "lines": [
                f"{prep.get('n_train', 0):,} / {prep.get('n_val', 0):,}",
                f"/ {prep.get('n_test', 0):,} images",
                f"standardise {mean:.0f} ± {std:.0f}",
            ],
            "row": 0,
            "kind": "step",
        },
        {
            "title": "train",
            "lines": [", ".join(trained) or "-", "checkpoints,", "resume"],
            "row": 0,
            "kind": "step",
        },
        {
            "title": "evaluate",
            "lines": ["metrics.json", "intervals, errors", f"steps done: {len(done)}"],
            "row": 0,
            "kind": "step",
            "to": ["model.keras"],
        },
        {
            "title": "model.keras",
            "lines": [f"best: {best}", f"one per model ({len(trained)})", "safe_mode load"],
            "row": 1,
            "kind": "artifact",
        },
        {
            "title": "predict",
            "lines": ["python -m fmnist_lib", "predict --run <id>", "IDX, CSV, PNG → CSV"],
            "row": 1,
            "kind": "serve",
        },
        {
            "title": "monitor",
            "lines": [
                f"pixel mean {mean:.1f}",
                f"pixel std {std:.1f}",
                "class mix, confidence",
            ],
            "row": 1,
            "kind": "watch",
        },
    ]


def system_text(metrics: dict[str, Any]) -> str:
    """What the system slide says beside the drawing."""
    eda = metrics.get("eda", {})
    return (
        "Batch inference from the saved model; drift is watched on what the model sees: the "
        f"pixel mean and standard deviation of incoming images against training "
        f"({eda.get('pixel_mean', float('nan')):.1f} and {eda.get('pixel_std', float('nan')):.1f}),"
        " the mix of predicted classes, and the share of low-confidence predictions."
    )


# --- the conclusion ------------------------------------------------------------------------


def takeaways(metrics: dict[str, Any]) -> list[str]:
    """Three takeaways, each computed from the run."""
    h = headline(metrics)
    trained, eda, results = metrics["training"], metrics["eda"], metrics["results"]
    resnet = trained.get("resnet50")
    first = (
        f"{h['best']} reaches {pct(h['accuracy'])} "
        f"({'tied with ' + ', '.join(h['ties']) if h['ties'] else 'ahead beyond the noise'}), "
        f"{(h['accuracy'] - ORIGINAL_TALK.accuracy) * 100:+.1f} points against the original "
        f"talk's {pct(ORIGINAL_TALK.accuracy)}."
    )
    second = "ResNet50 was not trained in this run."
    if resnet:
        label = report.method_label(resnet)
        transfer = "transfer" in label and "not transfer" not in label
        second = f"ResNet50, {label}: {pct(resnet['accuracy'])}" + (
            "." if transfer else "; without ImageNet weights this is not a transfer result."
        )
    third = (
        f"The data hold structure and oddities the original talk missed: k-means recovers "
        f"{len(eda['kmeans_recovered'])} of 10 classes, and {eda['outliers']['both']['total']} "
        f"images are outliers to both detectors ({results['outliers_in_test']['wrong']} of the "
        f"test ones fool {results['best_model']})."
    )
    return [first, second, third]


NEXT_STEPS = [
    "ImageNet weights for ResNet50 (not available offline here), then a real transfer run",
    "more seeds per model, so the intervals cover training noise too",
    "serve `predict` behind the drift checks, and review the agreed outliers by hand",
]


# --- speaker notes -------------------------------------------------------------------------


def note(shows: str, say: str) -> str:
    """A speaker note: what the slide shows, and the one sentence to say."""
    return f"**Shows:** {shows}\n\n**Say:** {say}"
