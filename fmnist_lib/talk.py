"""What the talk says, computed from a run: the insight, a verdict on every claim of the old
slide talk, the evidence behind each, the system as built, and the speaker notes.

Every sentence here is formatted from `metrics.json`, `run.json` and the training histories;
`05_presentation` shows them, one call per slide element. Two earlier works frame the talk,
and they are kept apart: the *slide talk* (data set, statistics, a dense model and its curves,
predictions, clustering, outliers, an empty system slide), which reported no accuracy, and the
*frozen-ImageNet ResNet50 work*, whose 85.7% is `report.EARLIER_RESNET`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from fmnist_lib import report

EARLIER_RESNET = report.EARLIER_RESNET
HUMAN = next(a for a in report.ANCHORS if a.name.startswith("Human"))
STATE_OF_THE_ART = max(report.ANCHORS, key=lambda a: a.accuracy)

CONFIRMED, PARTLY, REFUTED = "confirmed", "partly", "refuted"
TALK_MINUTES = 10
# "Slow" training, for a talk's audience: more than a minute to the validation plateau.
SLOW_SECONDS = 60
# "High from the start": the first epoch within five points of the best validation accuracy.
HIGH_FROM_START = 0.05


def pct(x: float) -> str:
    """An accuracy as a percentage with two decimals."""
    return f"{x:.2%}"


def points(x: float) -> str:
    """A difference of two accuracies in percentage points, signed."""
    return f"{x * 100:+.2f} points"


def device_label(entry: dict[str, Any]) -> str:
    """Where a model trained, in words: the accelerator, else the CPU and its cores."""
    device = entry.get("device") or {}
    if device.get("device_kind"):
        return device["device_kind"]
    cores = device.get("cpu_count")
    return f"{device.get('cpu') or 'CPU'}" + (f", {cores} cores" if cores else "")


# --- the headline --------------------------------------------------------------------------


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The best model, its accuracy with its interval, its cost, and who ties with it."""
    results, trained = metrics["results"], metrics["training"]
    best = results["best_model"]
    sure = results["uncertainty"]
    entry = trained[best]
    others = {
        name: s["against_best"] for name, s in sure["models"].items() if s.get("against_best")
    }
    runner_up = max(others, key=lambda name: others[name]["difference"], default=None)
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
        "runner_up": runner_up,
        "margin": -others[runner_up]["difference"] if runner_up else None,
    }


def ceiling_class(metrics: dict[str, Any]) -> tuple[str, float, float]:
    """The best model's hardest class: (class, its recall, the next-lowest recall)."""
    results = metrics["results"]
    per_class = results["models"][results["best_model"]]["per_class"]
    recalls = sorted((scores["recall"], name) for name, scores in per_class.items())
    (low, name), (second, _) = recalls[0], recalls[1]
    return name, low, second


def shared_confusion(metrics: dict[str, Any]) -> list[str]:
    """Classes that k-means on raw pixels merges into one cluster *and* that the best model
    confuses with each other (among its three most frequent mistakes)."""
    results = metrics["results"]
    pairs = results["models"][results["best_model"]].get("confused_pairs", [])[:3]
    groups = [set(g) for g in metrics["eda"].get("merged_classes", [])]
    shared: list[str] = []
    for pair in pairs:
        if any({pair["true"], pair["predicted"]} <= g for g in groups):
            shared += [c for c in (pair["true"], pair["predicted"]) if c not in shared]
    return shared


def insight(metrics: dict[str, Any]) -> str:
    """The one thing to remember, computed: who wins and by how much beyond the noise, which
    class is the ceiling, and that the pixels already merge the classes the model confuses."""
    h = headline(metrics)
    name, recall, second = ceiling_class(metrics)
    if h["ties"]:
        win = f"{h['best']} and {', '.join(h['ties'])} tie at the top (within the noise)"
    elif h["runner_up"]:
        win = (
            f"{h['best']} wins by {h['margin'] * 100:.2f} points over {h['runner_up']}, "
            f"beyond the noise"
        )
    else:
        win = f"{h['best']} is the only model"
    shared = shared_confusion(metrics)
    tops = (
        f"; k-means on raw pixels already merges {', '.join(shared)}, the classes it confuses"
        if shared
        else ""
    )
    return (
        f"{win}. {name} is the ceiling: {recall:.0%} of test shirts recognised, the next "
        f"hardest class {second:.0%}{tops}."
        if name == "Shirt"
        else f"{win}. {name} is the ceiling: {recall:.0%} recall, the next hardest class "
        f"{second:.0%}{tops}."
    )


def headline_text(metrics: dict[str, Any]) -> str:
    """The headline slide's lines (Markdown): the insight, then the number and its noise."""
    h = headline(metrics)
    return (
        f"### {insight(metrics)}\n\n"
        f"- {h['best']}: **{pct(h['accuracy'])}** on {h['n']:,} test images "
        f"({h['level']:.0%} interval {pct(h['low'])} – {pct(h['high'])}), "
        f"{h['train_seconds']:,.0f} s of training on {h['device']}"
    )


def anchor_labels() -> dict[str, float]:
    """The reference lines of the headline chart, named by who measured them."""
    return {
        "human": HUMAN.accuracy,
        "ImageNet ResNet50 (earlier work)": EARLIER_RESNET.accuracy,
        "state of the art": STATE_OF_THE_ART.accuracy,
    }


def sources_line() -> str:
    """Where the reference lines come from, in one line."""
    return (
        f"Lines: human {pct(HUMAN.accuracy)} ({HUMAN.source}); frozen ImageNet ResNet50 "
        f"{pct(EARLIER_RESNET.accuracy)} ({EARLIER_RESNET.source}); state of the art "
        f"{pct(STATE_OF_THE_ART.accuracy)} ({STATE_OF_THE_ART.source}). The slide talk "
        f"reported no accuracy."
    )


def earlier_resnet_line(metrics: dict[str, Any]) -> str:
    """What this run says about the frozen-ImageNet work's 85.7%."""
    resnet = metrics["training"].get("resnet50")
    if not resnet:
        return "ResNet50 was not trained in this run."
    label, acc = report.method_label(resnet), resnet["accuracy"]
    gap = acc - EARLIER_RESNET.accuracy
    if "frozen random" in label:
        side = "above" if gap > 0 else "below"
        return (
            f"Frozen *random* ResNet50 features reach {pct(acc)}, {abs(gap) * 100:.2f} points "
            f"{side} the {pct(EARLIER_RESNET.accuracy)} the earlier work reported with frozen "
            f"*ImageNet* features"
            + (
                ": that figure is no evidence that ImageNet features help at 32 px."
                if gap > 0
                else "."
            )
        )
    return (
        f"ResNet50, {label}: {pct(acc)} ({points(gap)} against the earlier work's frozen "
        f"ImageNet figure)."
    )


# --- the tables ----------------------------------------------------------------------------


def comparison_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """One row per model: accuracy with interval, the gap to the best in points, its hardest
    class, parameters that train, training time."""
    results, trained = metrics["results"], metrics["training"]
    sure = results["uncertainty"]
    rows = []
    for name, entry in trained.items():
        s = sure["models"][name]
        against = s.get("against_best")
        per_class = results["models"][name]["per_class"]
        worst = min(per_class, key=lambda c: per_class[c]["recall"])
        rows.append(
            {
                "model": name,
                "test accuracy": pct(entry["accuracy"]),
                f"{sure['level']:.0%} interval": f"{pct(s['low'])} – {pct(s['high'])}",
                "vs best": (
                    f"{points(against['difference'])} ({against['verdict']})" if against else "best"
                ),
                "hardest class": f"{worst} {per_class[worst]['recall']:.0%}",
                "trains": f"{trainable_params(entry) / 1e6:.2f}M of {entry['params'] / 1e6:.2f}M",
                "train time": f"{entry['train_seconds']:,.0f} s",
            }
        )
    return pd.DataFrame(rows).set_index("model")


def trainable_params(entry: dict[str, Any]) -> int:
    """Parameters that training updates: recorded, or summed over the trainable layers."""
    if entry.get("trainable_params") is not None:
        return int(entry["trainable_params"])
    return int(sum(row["parameters"] for row in entry.get("layers", []) if row.get("trainable")))


def models_table(trained: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per model: its size, how much of it trains, its input, how it was trained."""
    return pd.DataFrame(
        {
            name: {
                "parameters": f"{m['params']:,}",
                "trained": f"{trainable_params(m):,}",
                "input": f"{m['image_size']}×{m['image_size']}",
                "how it was trained": report.method_label(m),
            }
            for name, m in trained.items()
        }
    ).T


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


def layers_table(entry: dict[str, Any]) -> tuple[pd.DataFrame, str]:
    """A model's layers that hold parameters, the batch-normalisation layers summed in one
    row, and a total row equal to the model's parameter count; plus a line naming the
    parameter-free layers left out. Raises if the rows do not add up to the recorded total."""
    table = pd.DataFrame(entry.get("layers", []))
    if table.empty:
        return table, ""
    held = table[(table["parameters"] > 0) & ~table["type"].isin(SHAPING_LAYERS)]
    norm = table[table["type"] == "BatchNormalization"]
    rows = held[["layer", "type", "output shape", "parameters"]].to_dict(orient="records")
    if len(norm):
        rows.append(
            {
                "layer": f"{len(norm)} × batch norm",
                "type": "BatchNormalization",
                "output shape": "",
                "parameters": int(norm["parameters"].sum()),
            }
        )
    total = sum(int(r["parameters"]) for r in rows)
    if total != entry["params"]:
        raise ValueError(f"layer rows add up to {total:,}, the model has {entry['params']:,}")
    rows.append({"layer": "total", "type": "", "output shape": "", "parameters": total})
    free = sorted(set(table[table["parameters"] == 0]["type"]) - {"InputLayer"})
    out = pd.DataFrame(rows)
    out["parameters"] = out["parameters"].map("{:,}".format)
    return out, f"Layers without parameters, not listed: {', '.join(free)}." if free else ""


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


def uncertainty_line(metrics: dict[str, Any]) -> str:
    """How the intervals are computed, in one line."""
    sure = metrics["results"]["uncertainty"]
    n = metrics["training"][metrics["results"]["best_model"]]["n"]
    return (
        f"{sure['level']:.0%} intervals on {n:,} test images: Wilson for one model, paired "
        f"differences for two (a tie when the interval of the difference contains 0). One seed."
    )


NMI_LINE = (
    "NMI (normalised mutual information): how much knowing the cluster tells you about the "
    "class, from 0 (nothing) to 1 (the clusters are the classes)."
)


# --- the claims of the old slide talk ------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """One claim of the old slide talk, judged by this run."""

    claim: str  # what the slide talk said or showed
    verdict: str  # CONFIRMED, PARTLY or REFUTED
    evidence: str  # the computed sentence behind the verdict
    slide: str  # where the talk shows it

    def line(self) -> str:
        """The verdict as the first line of its slide (Markdown)."""
        return (
            f"<p class='verdict verdict-{self.verdict}'><b>{self.verdict}</b> · {self.evidence}</p>"
        )


def curve_facts(history: list[dict[str, Any]]) -> dict[str, float]:
    """From one model's history: first-epoch and last accuracies, the final train–validation
    gap, and the median seconds per epoch."""
    main = [h for h in history if h.get("val_accuracy") is not None]
    seconds = sorted(h["seconds"] for h in history if h.get("seconds") is not None)
    return {
        "first_val": main[0]["val_accuracy"],
        "best_val": max(h["val_accuracy"] for h in main),
        "last_train": history[-1]["accuracy"],
        "last_val": main[-1]["val_accuracy"],
        "epochs": len(history),
        "seconds_per_epoch": seconds[len(seconds) // 2] if seconds else float("nan"),
        "plateau_epoch": next(
            i + 1
            for i, h in enumerate(main)
            if h["val_accuracy"] >= max(x["val_accuracy"] for x in main) - 0.005
        ),
    }


def _data_verdict(metrics: dict[str, Any], run: dict[str, Any]) -> Verdict:
    eda = metrics["eda"]
    n = eda["n_train"] + eda["n_test"]
    files = len(run.get("data", {}).get("files", {})) or len(eda.get("data_md5", {}))
    return Verdict(
        "70,000 images, from a library or a file, each a row of 784 values",
        CONFIRMED if n == 70_000 else PARTLY,
        f"{n:,} images read from the {files} official IDX files, each MD5-verified; as a "
        f"CSV row: the label, then 784 pixels",
        "data",
    )


def normalisation_check(label_errors: dict[str, Any] | None) -> dict[str, Any] | None:
    """The measured effect of standardising the input, from the label audit's first fold
    trained twice (same seed, standardised and raw 0–255 pixels): both held-out accuracies,
    their difference and its 95% noise (binomial, on the fold's n / folds images), or None
    when the run did not measure it."""
    audit = label_errors or {}
    norm = audit.get("normalisation")
    if not norm:
        return None
    n = audit["n_images"] // audit["folds"]
    a, b = norm["standardised_accuracy"], norm["raw_accuracy"]
    noise = 1.96 * ((a * (1 - a) + b * (1 - b)) / n) ** 0.5
    return {
        "model": audit["model"],
        "epochs": audit["epochs"],
        "n": n,
        "standardised": a,
        "raw": b,
        "difference": a - b,
        "noise": noise,
    }


def _normalise_verdict(metrics: dict[str, Any]) -> Verdict:
    return normalisation_verdict(metrics.get("label_errors"))


def normalisation_verdict(label_errors: dict[str, Any] | None) -> Verdict:
    """The slide talk's "normalise the data", judged by the label audit's measurement: helps
    or hurts beyond the binomial noise of the fold, or within it."""
    check = normalisation_check(label_errors)
    if check is None:
        return Verdict("normalise the data", PARTLY, "not measured in this run", "statistics")
    d, noise = check["difference"], check["noise"]
    verdict = CONFIRMED if d > noise else REFUTED if d < -noise else PARTLY
    said = {
        CONFIRMED: "standardising helps beyond the noise",
        REFUTED: "standardising hurts beyond the noise",
        PARTLY: "the difference is within the noise",
    }[verdict]
    return Verdict(
        "normalise the data",
        verdict,
        f"the {check['model']} after {check['epochs']} epochs: {pct(check['standardised'])} "
        f"standardised against {pct(check['raw'])} on raw 0–255 pixels "
        f"({points(d)}, noise ±{noise * 100:.2f}): {said}",
        "statistics",
    )


def _speed_verdict(metrics: dict[str, Any], histories: dict[str, list]) -> Verdict:
    mlp = metrics["training"].get("mlp")
    if not mlp or not histories.get("mlp"):
        return Verdict(
            "a dense model: slow, but accurate from the start",
            PARTLY,
            "no dense model in this run",
            "curves",
        )
    f = curve_facts(histories["mlp"])
    dense = sum(1 for layer in mlp.get("layers", []) if layer["type"] == "Dense")
    to_plateau = f["plateau_epoch"] * f["seconds_per_epoch"]
    slow = to_plateau > SLOW_SECONDS
    high = f["first_val"] >= f["best_val"] - HIGH_FROM_START
    verdict = CONFIRMED if high and slow else PARTLY if high or slow else REFUTED
    return Verdict(
        "a 4-layer dense model: training is slow, but accuracy is high from the start",
        verdict,
        f"our mlp ({dense} dense layers) is at {pct(f['first_val'])} on validation after epoch "
        f"1, {pct(f['best_val'])} at best: high from the start, {'yes' if high else 'no'}; "
        f"slow, {'yes' if slow else 'no'}: {f['seconds_per_epoch']:.1f} s an epoch, "
        f"{to_plateau:.0f} s to its plateau on {device_label(mlp)}",
        "curves",
    )


def _curves_verdict(metrics: dict[str, Any], histories: dict[str, list]) -> Verdict:
    if not histories.get("mlp"):
        return Verdict("the training curves", PARTLY, "no dense model in this run", "curves")
    f = curve_facts(histories["mlp"])
    gap = f["last_train"] - f["last_val"]
    return Verdict(
        "the training curves (shown, not read)",
        PARTLY if gap > 0.03 else CONFIRMED,
        f"the mlp's validation accuracy is within half a point of its best from epoch "
        f"{f['plateau_epoch']} of {f['epochs']}, while training accuracy climbs to "
        f"{pct(f['last_train'])}: a gap of {gap * 100:.1f} points"
        + (", it overfits" if gap > 0.03 else ""),
        "curves",
    )


def _predictions_verdict(metrics: dict[str, Any]) -> Verdict:
    results = metrics["results"]
    best = results["best_model"]
    shown = results["sample_predictions"]
    right = sum(1 for row in shown if row["correct"])
    acc = metrics["training"][best]["accuracy"]
    n = metrics["training"][best]["n"]
    mlp = metrics["training"].get("mlp")
    dense = f"; the dense mlp misses {1 - mlp['accuracy']:.1%}" if mlp and best != "mlp" else ""
    return Verdict(
        "every test image shown was recognised",
        PARTLY if right == len(shown) else REFUTED,  # all shown right: true of those alone
        f"{best} gets {right} of {len(shown)} seeded test images right and misses "
        f"{round((1 - acc) * n):,} of {n:,} ({1 - acc:.1%}){dense}",
        "predictions",
    )


def _clustering_verdict(metrics: dict[str, Any]) -> Verdict:
    eda = metrics["eda"]
    recovered = eda["kmeans_recovered"]
    shared = shared_confusion(metrics)
    return Verdict(
        "clustering is not needed, and impossible",
        PARTLY,
        f"k-means on raw pixels recovers {len(recovered)} of 10 classes "
        f"({', '.join(recovered) or 'none'}; NMI {eda['kmeans_nmi']:.2f}): no classifier, "
        f"but far from impossible"
        + (
            f", and it merges {', '.join(shared)}, which the best model confuses too"
            if shared
            else ""
        ),
        "clustering",
    )


def _outliers_verdict(metrics: dict[str, Any]) -> Verdict:
    eda, audit = metrics["eda"], metrics.get("label_errors")
    bad = sum(eda["pixel_range"].values())
    if audit:
        evidence = (
            f"the pixel-range check finds {bad or 'none'}, but confident learning estimates "
            f"{audit['rate']:.1%} of labels wrong ({audit['level']:.0%} interval "
            f"{audit['rate_low']:.1%} – {audit['rate_high']:.1%}, about "
            f"{audit['estimated_errors']:,.0f} of {audit['n_images']:,} images)"
        )
    else:
        evidence = (
            f"the pixel-range check finds {bad or 'none'}, but {eda['outliers_flagged']:,} "
            f"images are shape outliers (no label audit in this run)"
        )
    return Verdict("there are no outliers", REFUTED, evidence, "outliers")


def _system_verdict(metrics: dict[str, Any]) -> Verdict:
    built = [s for s in SYSTEM if s.built]
    planned = [s.title for s in SYSTEM if not s.built]
    return Verdict(
        "(an empty ML system design slide)",
        PARTLY,
        f"{len(built)} of {len(SYSTEM)} stages are built and run here, "
        f"{', '.join(planned) or 'none'} planned",
        "system",
    )


def verdicts(
    metrics: dict[str, Any], run: dict[str, Any], histories: dict[str, list]
) -> list[Verdict]:
    """A verdict on every claim of the old slide talk, in the order the talk meets them."""
    return [
        _data_verdict(metrics, run),
        _normalise_verdict(metrics),
        _speed_verdict(metrics, histories),
        _curves_verdict(metrics, histories),
        _predictions_verdict(metrics),
        _clustering_verdict(metrics),
        _outliers_verdict(metrics),
        _system_verdict(metrics),
    ]


def verdict_table(found: list[Verdict]) -> pd.DataFrame:
    """The scorecard: each claim, its verdict, and the evidence."""
    return pd.DataFrame(
        [
            {"the slide talk said": v.claim, "verdict": v.verdict, "this run found": v.evidence}
            for v in found
        ]
    )


def verdict_for(found: list[Verdict], slide: str) -> list[Verdict]:
    """The verdicts a slide shows."""
    return [v for v in found if v.slide == slide]


def scorecard_line(found: list[Verdict]) -> str:
    """How the old talk fares, counted."""
    counts = {k: sum(v.verdict == k for v in found) for k in (CONFIRMED, PARTLY, REFUTED)}
    return (
        f"Of the slide talk's {len(found)} claims, {counts[CONFIRMED]} hold, "
        f"{counts[PARTLY]} hold in part and {counts[REFUTED]} do not."
    )


# --- the label audit -----------------------------------------------------------------------


def worst_label_cell(audit: dict[str, Any]) -> tuple[str, str, float]:
    """The largest off-diagonal cell of the calibrated joint: (given, true, images)."""
    from fmnist_lib.data import CLASS_NAMES

    joint = audit["calibrated_joint"]
    images, i, j = max(
        (joint[i][j], i, j) for i in range(len(joint)) for j in range(len(joint)) if i != j
    )
    return CLASS_NAMES[i], CLASS_NAMES[j], images


def most_mislabelled_class(audit: dict[str, Any]) -> tuple[str, float]:
    """The given label with the most estimated wrong labels (off-diagonal row sum)."""
    from fmnist_lib.data import CLASS_NAMES

    joint = audit["calibrated_joint"]
    wrong = [sum(row) - row[i] for i, row in enumerate(joint)]
    worst = max(range(len(wrong)), key=wrong.__getitem__)
    return CLASS_NAMES[worst], wrong[worst]


def label_audit_text(metrics: dict[str, Any]) -> str:
    """What the label audit found, for the outliers slide (Markdown)."""
    audit = metrics.get("label_errors")
    if not audit:
        return "No label audit in this run."
    reports = audit.get("public_reports") or {}
    public = (
        f" Of {reports['audited']} mislabelled images reported publicly, it flags "
        f"**{reports['flagged']}**, found without looking at the reports."
        if reports.get("audited")
        else ""
    )
    given, true, images = worst_label_cell(audit)
    return (
        f"Out-of-fold predictions of a {audit['model']} ({audit['folds']} folds, "
        f"{pct(audit['oof_accuracy'])} accurate) on {audit['n_images']:,} images, judged by "
        f"confident learning (Northcutt et al., JAIR 2021): **{audit['flagged']:,}** flagged; "
        f"the largest group is labelled {given}, truly {true} (about {images:,.0f}).{public}"
    )


# --- the system ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """One stage of the ML system; `built` says whether this project runs it."""

    title: str
    built: bool
    row: int
    kind: str


SYSTEM = (
    Stage("IDX files", True, 0, "data"),
    Stage("split + scale", True, 0, "step"),
    Stage("train", True, 0, "step"),
    Stage("evaluate", True, 0, "step"),
    Stage("model.keras", True, 1, "artifact"),
    Stage("predict", True, 1, "serve"),
    Stage("monitor", True, 1, "watch"),
    Stage("retrain trigger", False, 1, "planned"),
)


def system_stages(run: dict[str, Any], metrics: dict[str, Any]) -> list[dict]:
    """The ML system, each stage with what this run shows of it: `plots.system_flow`'s input."""
    prep, trained = metrics.get("preprocessing", {}), metrics.get("training", {})
    results = metrics.get("results", {})
    best = results.get("best_model", next(iter(trained), "?"))
    files = run.get("data", {}).get("files", {})
    serve = (trained.get(best) or {}).get("inference") or {}
    commit = ((run.get("git") or {}).get("commit") or "")[:8] or "?"
    lines = {
        "IDX files": [f"{len(files) or 4} files", "MD5-verified", "on every load"],
        "split + scale": [
            f"{prep.get('n_train', 0):,} train",
            f"{prep.get('n_val', 0):,} validation",
            f"{prep.get('n_test', 0):,} test",
        ],
        "train": [", ".join(trained) or "-", "checkpoints,", "exact resume"],
        "evaluate": ["intervals, ties", "label audit", "metrics.json"],
        "model.keras": [f"best: {best}", f"run {run.get('run_id', '?')[:15]}", f"commit {commit}"],
        "predict": (
            [
                f"{serve['ms_per_image_batch1']:.1f} ms an image",
                f"{serve['images_per_second']:,.0f} images/s",
                "IDX, CSV, PNG",
            ]
            if serve
            else ["python -m fmnist_lib", "predict --run <id>", "IDX, CSV, PNG"]
        ),
        "monitor": ["size, polarity,", "pixels, class mix,", "confidence: warns"],
        "retrain trigger": ["planned:", "on drift warnings", "not built"],
    }
    feeds = {"evaluate": ["model.keras"], "retrain trigger": ["train"]}
    return [
        {"title": s.title, "lines": lines[s.title], "row": s.row, "kind": s.kind}
        | ({"to": feeds[s.title]} if s.title in feeds else {})
        for s in SYSTEM
    ]


def system_text(metrics: dict[str, Any], run: dict[str, Any], watch: Any = None) -> str:
    """What the system slide says beside the drawing: serving speed, versioning, and what the
    monitor checks with its thresholds (`watch`: the run's `monitor.Profile`, when it has one)."""
    from fmnist_lib import monitor

    trained, results = metrics.get("training", {}), metrics.get("results", {})
    best = results.get("best_model", next(iter(trained), "?"))
    serve = (trained.get(best) or {}).get("inference") or {}
    speed = (
        f"{best} serves {serve['ms_per_image_batch1']:.1f} ms an image alone, "
        f"{serve['images_per_second']:,.0f} images/s in batches of {serve['large_batch']:,} "
        f"({device_label(trained[best])}). "
        if serve
        else ""
    )
    checks = "size, polarity, pixel mean and spread, class mix, confidence"
    if watch is not None:
        low = watch.model(best)
        checks = (
            f"pixel mean outside {watch.pixel_mean.low:.0f}–{watch.pixel_mean.high:.0f}, "
            f"spread outside {watch.pixel_std.low:.0f}–{watch.pixel_std.high:.0f}, a light "
            f"background, a class mix over {monitor.MAX_CLASS_MIX_TV:g} (total variation) from the "
            f"test set's"
            + (
                f", more than {low.low_confidence_share:.1%} under "
                f"{monitor.LOW_CONFIDENCE:.0%} confidence"
                if low
                else ""
            )
        )
    return (
        f"{speed}Versioned by run id, data MD5s and commit (`run.json`). `predict` converts "
        f"photos and warns in one line per input on: {checks}."
    )


# --- the conclusion ------------------------------------------------------------------------


def takeaways(metrics: dict[str, Any], found: list[Verdict]) -> list[str]:
    """Three takeaways, each computed from the run, none repeating the headline's number."""
    audit = metrics.get("label_errors")
    second = earlier_resnet_line(metrics)
    if not audit:
        return [insight(metrics), second, scorecard_line(found)]
    name, images = most_mislabelled_class(audit)
    hardest = ceiling_class(metrics)[0]
    where = (
        f", and {name}, the hardest class, carries the most of them (about {images:,.0f} "
        f"images labelled {name})"
        if name == hardest
        else f" ({audit['flagged']:,} images flagged for review)"
    )
    third = (
        f'The slide talk\'s "no outliers" is wrong where it matters: about {audit["rate"]:.1%} '
        f"of the labels are wrong{where}."
    )
    return [insight(metrics), second, third]


NEXT_STEPS = [
    "ImageNet weights for ResNet50 (not to be had offline here), then a real transfer run",
    "more seeds, so the intervals cover training noise",
    "relabel the flagged images and retrain",
]


# --- speaker notes -------------------------------------------------------------------------


@dataclass(frozen=True)
class Note:
    """A speaker note: its time budget, what to say, and a likely question with its answer."""

    seconds: int
    say: str
    question: str = ""
    answer: str = ""

    def markdown(self) -> str:
        """The note as the speaker view shows it."""
        text = f"**{self.seconds} s** · {self.say}"
        if self.question:
            text += f"\n\n**Q:** {self.question}\n\n**A:** {self.answer}"
        return text


def notes(
    metrics: dict[str, Any], run: dict[str, Any], histories: dict[str, list]
) -> dict[str, Note]:
    """Every slide's speaker note, computed from the run, with a time budget that adds up to
    the talk's length (`TALK_MINUTES`)."""
    h = headline(metrics)
    every = verdicts(metrics, run, histories)
    found = {v.slide: v for v in every}  # the first verdict of each slide (curves has two)
    found["curves"] = every[3]
    name, recall, _ = ceiling_class(metrics)
    eda, results, trained = metrics["eda"], metrics["results"], metrics["training"]
    audit = metrics.get("label_errors") or {}
    pair = (results["models"][h["best"]].get("confused_pairs") or [None])[0]
    mlp = curve_facts(histories["mlp"]) if histories.get("mlp") else None
    norm = normalisation_check(audit)
    serve = trained[h["best"]].get("inference") or {}
    explained = results.get("explain")
    said = {
        "title": Note(
            15,
            f"Hello. Every number tonight comes from one run, {run.get('run_id', '?')}, and we "
            f"check each claim of an earlier slide talk on Fashion-MNIST against it.",
        ),
        "headline": Note(
            45,
            insight(metrics),
            "Is the win real or one lucky seed?",
            f"One seed; the {h['level']:.0%} interval of {h['best']} is {pct(h['low'])} – "
            f"{pct(h['high'])}"
            + (
                f", and {h['runner_up']} is {h['margin'] * 100:.2f} points behind, outside "
                f"the noise of the paired difference."
                if h["runner_up"] and not h["ties"]
                else "."
            ),
        ),
        "scorecard": Note(
            35,
            scorecard_line(every) + " Each verdict returns on its slide.",
        ),
        "data": Note(20, _sentence(found["data"].evidence)),
        "classes": Note(
            15,
            f"One colour per class, on every slide. {name} is the class to watch.",
        ),
        "balance": Note(
            15,
            f"Balanced: {min(eda['train_per_class'].values()):,} training images per class, "
            f"so accuracy is a fair summary.",
        ),
        "normalise": Note(
            35,
            _sentence(found["statistics"].evidence),
            "Is that a general rule?" if norm else "",
            (
                f"No: it is one model ({norm['model']}), {norm['epochs']} epochs, one fold of "
                f"{norm['n']:,} images and one seed, both runs with the same batches."
                if norm
                else ""
            ),
        ),
        "models": Note(
            30,
            "Three models: a dense network like the slide talk's, a small CNN, and ResNet50. "
            + earlier_resnet_line(metrics),
            "Why not ImageNet weights?" if _random_resnet(trained) else "",
            "The file could not be had on the machine that ran this; the run says which "
            "weights it used, and never calls random weights transfer."
            if _random_resnet(trained)
            else "",
        ),
        "recipe": Note(
            20,
            "Everything that could flatter a model is on this slide: augmentation, test-time "
            "flips, label smoothing; the test set is touched once.",
        ),
        "curves": Note(
            40,
            _sentence(found["curves"].evidence),
            "Would early stopping help?" if mlp else "",
            (
                f"Validation is flat from epoch {mlp['plateau_epoch']}: stopping there saves "
                f"{mlp['epochs'] - mlp['plateau_epoch']} epochs at no cost in accuracy."
                if mlp
                else ""
            ),
        ),
        "results": Note(
            30,
            f"Read the gaps in points: {h['best']} is best"
            + (
                f", {h['runner_up']} {h['margin'] * 100:.2f} points behind."
                if h["runner_up"]
                else "."
            )
            + " "
            + _hardest_classes(metrics),
        ),
        "cost": Note(
            25,
            report.cost_summary(report.cost_table(trained), h["best"]),
            "What would you deploy?",
            f"{h['best']}: the most accurate here, at {h['train_seconds']:,.0f} s of training"
            + (f" and {serve['ms_per_image_batch1']:.1f} ms an image." if serve else "."),
        ),
        "predictions": Note(
            30,
            _sentence(found["predictions"].evidence),
        ),
        "confusion": Note(
            35,
            f"The most frequent mistake is {pair['true']} read as {pair['predicted']} "
            f"({pair['count']} images); {name} is recognised {recall:.0%} of the time."
            if pair
            else "No mistakes.",
        ),
        "explain": Note(
            30,
            _explain_finding(explained)
            or "No occlusion maps in this run: the best model's file is not in its folder.",
        ),
        "clustering": Note(
            35,
            _sentence(found["clustering"].evidence),
            "What is NMI?",
            "How much knowing the cluster tells you about the class: 0 nothing, 1 the clusters "
            f"are the classes; here {eda['kmeans_nmi']:.2f}.",
        ),
        "embeddings": Note(
            25,
            f"Same {results['clustering']['n']:,} test images in both maps; the right one was "
            f"trained with labels, so it is what supervision buys, not a discovery.",
        ),
        "outliers": Note(
            55,
            _sentence(found["outliers"].evidence),
            "How do you know they are label errors, not hard images?" if audit else "",
            (
                "Confident learning flags an image only when out-of-fold predictions are "
                "confidently another class beyond that class's own threshold; the gallery "
                "is for a person to confirm."
                if audit
                else ""
            ),
        ),
        "system": Note(
            40,
            found["system"].evidence[0].upper()
            + found["system"].evidence[1:]
            + ". "
            + system_text(metrics, run),
        ),
        "conclusion": Note(
            25,
            takeaways(metrics, every)[0] + " Thank you.",
        ),
    }
    return said


def _explain_finding(record: dict[str, Any] | None) -> str:
    """The occlusion maps' finding, from `results.explain`, or "" when there are none."""
    from fmnist_lib import explain

    return explain.OcclusionRecord.from_dict(record).finding() if record else ""


def _sentence(text: str) -> str:
    """A clause as a sentence, with a full stop; capitalised only where it starts with a
    plain word ("the", "our"), never a model's or a method's name (mlp, k-means)."""
    first, _, rest = text.partition(" ")
    if first in {"the", "our"}:
        text = first.capitalize() + " " + rest
    return text + ("" if text.endswith(".") else ".")


def _random_resnet(trained: dict[str, Any]) -> bool:
    """Whether the run's ResNet50 ran without pretrained weights."""
    return (trained.get("resnet50") or {}).get("weights_used") in ("random", None) and (
        "resnet50" in trained
    )


def _hardest_classes(metrics: dict[str, Any]) -> str:
    """Each model's lowest-recall class, said once when they agree."""
    models = metrics["results"]["models"]
    worst = {
        name: min(m["per_class"], key=lambda c: m["per_class"][c]["recall"])
        for name, m in models.items()
        if name in metrics["training"]
    }
    classes = set(worst.values())
    if len(classes) == 1:
        return f"{classes.pop()} is the hardest class of every model."
    return "Hardest classes: " + ", ".join(f"{c} for {n}" for n, c in worst.items()) + "."


def note_markdown(notes_: dict[str, Note], slide: str) -> str:
    """One slide's note for the speaker view."""
    return notes_[slide].markdown()


def note(shows: str, say: str) -> str:
    """A plain speaker note, for slides outside the talk's plan."""
    return f"{shows}\n\n{say}"
