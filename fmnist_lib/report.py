"""Results across a run's models: comparison, predictions, learned features, anchors."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fmnist_lib import eda, evaluate, records
from fmnist_lib.data import CLASS_NAMES


@dataclass(frozen=True)
class Anchor:
    """A reference accuracy on the Fashion-MNIST test set; quoted, never ours."""

    name: str
    accuracy: float
    source: str
    whose: str = "published"  # or "earlier work": the frozen-ImageNet ResNet50 work revisited


# Reference points quoted beside our numbers so a reader can place them; none is ours.
ANCHORS: tuple[Anchor, ...] = (
    Anchor(
        "Human, non-expert (crowd-sourced, 1,000 test images)",
        0.835,
        "github.com/zalandoresearch/fashion-mnist, README.md, Benchmark: human performance",
    ),
    Anchor(
        "ResNet50, frozen ImageNet backbone, 32 px, GAP + BN + Dense head, Adam",
        0.857,
        "the earlier ResNet50 transfer work this project revisits (its reported test "
        "accuracy; the slide talk reported none)",
        whose="earlier work",
    ),
    Anchor(
        "Best scikit-learn classifier (SVC, RBF kernel)",
        0.897,
        "Xiao, Rasul & Vollgraf 2017, arXiv:1708.07747, Table 3",
    ),
    Anchor(
        "State of the art (fine-tuned DARTS)",
        0.9691,
        "Tanveer, Khan & Kyung 2020, Fine-Tuning DARTS for Image Classification, arXiv:2006.09042",
    ),
)


EARLIER_RESNET = next(a for a in ANCHORS if a.whose == "earlier work")


def anchors_table(ours: dict[str, float]) -> pd.DataFrame:
    """Our test accuracies (`model -> accuracy`) and the anchors, sorted, each with its source."""
    rows = [
        {"result": f"{name} (this run)", "accuracy": acc, "whose": "ours", "source": "metrics.json"}
        for name, acc in ours.items()
    ]
    rows += [
        {"result": a.name, "accuracy": a.accuracy, "whose": a.whose, "source": a.source}
        for a in ANCHORS
    ]
    table = pd.DataFrame(rows).sort_values("accuracy", ascending=False, kind="stable")
    return table.set_index("result")


def style_anchors(table: pd.DataFrame):
    """The anchors table for display: our rows bold, published rows grey."""
    return table.style.format({"accuracy": "{:.1%}"}).apply(
        lambda row: ["font-weight: bold" if row["whose"] == "ours" else "color: #555"] * len(row),
        axis=1,
    )


# --- the comparison ---------------------------------------------------------------


def method_label(entry: dict[str, Any]) -> str:
    """How a model was trained, honestly named: for ResNet50 the label `03_training` derived
    from the weights actually used (never "transfer" without pretrained weights)."""
    if entry.get("weights_label"):
        return entry["weights_label"]
    if entry.get("weights_used"):  # a run recorded before labels existed
        return f"weights {entry['weights_used']}, stage {entry.get('fine_tune')}"
    return "trained from scratch"


def comparison_table(trained: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per trained model, read from `metrics.json` -> `training`."""
    rows = []
    for name, m in trained.items():
        rows.append(
            {
                "model": name,
                "method": method_label(m),
                "weights used": m.get("weights_used") or "-",
                "fine-tune": m.get("fine_tune") or "-",
                "image size": m.get("image_size"),
                "parameters": m.get("params"),
                "epochs": m.get("epochs"),
                "train time (s)": m.get("train_seconds"),
                "n train": m.get("n_train"),
                "test accuracy": m.get("accuracy"),
                "macro F1": m.get("macro_f1"),
            }
        )
    return pd.DataFrame(rows).set_index("model")


def best_model(table: pd.DataFrame) -> str:
    """The model with the highest test accuracy (macro F1 breaks ties)."""
    order = table.sort_values(["test accuracy", "macro F1"], ascending=False, kind="stable")
    return str(order.index[0])


def style_comparison(table: pd.DataFrame, best: str):
    """The comparison table formatted for display, the best model's row highlighted."""
    return table.style.format(
        {
            "test accuracy": "{:.2%}",
            "macro F1": "{:.3f}",
            "train time (s)": "{:.1f}",
            "parameters": "{:,}",
        },
        na_rep="-",
    ).apply(
        lambda row: (
            ["background-color: #c6efce; font-weight: bold" if row.name == best else ""] * len(row)
        ),
        axis=1,
    )


# --- how sure: intervals on the test set ------------------------------------------------

LEVEL = 0.95  # confidence level of every interval the results and slides show


def accuracy_interval(correct: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of the accuracy, from one boolean per test image."""
    from scipy.stats import binomtest

    ci = binomtest(int(np.sum(correct)), len(correct)).proportion_ci(level, method="wilson")
    return float(ci.low), float(ci.high)


def paired_difference(a: np.ndarray, b: np.ndarray, level: float = LEVEL) -> dict[str, Any]:
    """Accuracy of model a minus model b on the same test images, with its interval.

    Both models see the same images, so the interval uses the paired differences (only images
    that one model gets right and the other wrong count); "tie" when it contains zero.
    """
    from scipy.stats import norm

    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = len(d)
    half = norm.ppf(0.5 + level / 2) * d.std(ddof=1) / np.sqrt(n) if n > 1 else np.inf
    diff = float(d.mean())
    low, high = diff - half, diff + half
    verdict = "tie" if low <= 0 <= high else ("better" if diff > 0 else "worse")
    return {"difference": diff, "low": float(low), "high": float(high), "verdict": verdict}


def uncertainty(preds: dict[str, Predictions], best: str) -> dict[str, Any]:
    """Each model's accuracy interval, and each model against the best on the same images."""
    correct = {name: p.y_pred == p.y_true for name, p in preds.items()}
    out: dict[str, Any] = {"level": LEVEL, "models": {}}
    for name, hits in correct.items():
        low, high = accuracy_interval(hits)
        entry: dict[str, Any] = {"accuracy": float(hits.mean()), "low": low, "high": high}
        if name != best and len(hits) == len(correct[best]):
            entry["against_best"] = paired_difference(hits, correct[best])
        out["models"][name] = entry
    out["tied_with_best"] = [
        name
        for name, entry in out["models"].items()
        if entry.get("against_best", {}).get("verdict") == "tie"
    ]
    return out


def best_epoch(history: list[dict[str, Any]]) -> dict[str, Any]:
    """The epoch with the best validation accuracy beside the last (1-based), both scores."""
    validated = [
        (i, row["val_accuracy"]) for i, row in enumerate(history, 1) if "val_accuracy" in row
    ]
    if not validated:
        return {"best_epoch": None, "best_val_accuracy": None, "last_epoch": len(history)}
    epoch, value = max(validated, key=lambda item: item[1])
    return {
        "best_epoch": epoch,
        "best_val_accuracy": float(value),
        "last_epoch": len(history),
        "last_val_accuracy": float(validated[-1][1]),
    }


# --- predictions ------------------------------------------------------------------


@dataclass
class Predictions:
    """What `03_training` saved for one model: test probabilities and true labels."""

    model: str
    proba: np.ndarray
    y_true: np.ndarray
    test_index: np.ndarray

    @property
    def y_pred(self) -> np.ndarray:
        return self.proba.argmax(axis=1)

    @property
    def confidence(self) -> np.ndarray:
        return self.proba.max(axis=1)


def load_predictions(run_dir: str | os.PathLike[str], model: str) -> Predictions:
    """Read `models/<model>/predictions.npz`."""
    path = Path(run_dir) / "models" / model / "predictions.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run 03_training with MODEL={model!r} first")
    with np.load(path) as npz:
        return Predictions(model, npz["proba"], npz["y_true"], npz["test_index"])


def model_scores(pred: Predictions, bins: int = 15) -> dict[str, Any]:
    """Accuracy, macro F1, ECE, per-class scores and confused pairs, for `metrics.json`."""
    ece, _ = evaluate.expected_calibration_error(pred.y_true, pred.proba, bins)
    per_class = evaluate.per_class_report(pred.y_true, pred.y_pred)
    pairs = evaluate.confused_pairs(pred.y_true, pred.y_pred)
    return {
        **evaluate.summary(pred.y_true, pred.proba),
        "ece": ece,
        "per_class": per_class.round(4).to_dict(orient="index"),
        "confused_pairs": pairs.to_dict(orient="records"),
        "misclassified": int((pred.y_pred != pred.y_true).sum()),
    }


def misclassified(pred: Predictions, n: int) -> np.ndarray:
    """Positions of the `n` most confident mistakes (most confident first)."""
    wrong = np.flatnonzero(pred.y_pred != pred.y_true)
    order = np.argsort(-pred.confidence[wrong], kind="stable")
    return wrong[order[:n]]


def fixed_sample(y_true: np.ndarray, per_class: int = 1, seed: int = 0) -> np.ndarray:
    """Seeded positions of `per_class` test images of each class present, in class order."""
    rng = np.random.default_rng(seed)
    picks = [
        rng.choice(np.flatnonzero(y_true == c), min(per_class, int((y_true == c).sum())), False)
        for c in range(len(CLASS_NAMES))
        if (y_true == c).any()
    ]
    return np.concatenate(picks) if picks else np.array([], dtype=int)


def top_k(proba: np.ndarray, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The `k` most probable classes of each row and their probabilities, best first."""
    classes = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    return classes, np.take_along_axis(proba, classes, axis=1)


def prediction_table(pred: Predictions, positions: np.ndarray, k: int = 3) -> pd.DataFrame:
    """True label, predicted label and the top-`k` probabilities of chosen test images."""
    classes, probs = top_k(pred.proba[positions], k)
    rows = []
    for pos, cls, p in zip(positions, classes, probs, strict=True):
        row = {
            "test image": int(pred.test_index[pos]),
            "true": CLASS_NAMES[pred.y_true[pos]],
            "predicted": CLASS_NAMES[cls[0]],
            "correct": bool(cls[0] == pred.y_true[pos]),
        }
        row.update(
            {
                f"top {i + 1}": f"{CLASS_NAMES[c]} {q:.1%}"
                for i, (c, q) in enumerate(zip(cls, p, strict=True))
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)


def mistake_captions(pred: Predictions, positions: np.ndarray) -> list[str]:
    """`true → predicted` and the confidence, one caption per image."""
    return [
        f"{CLASS_NAMES[pred.y_true[i]]}\n→ {CLASS_NAMES[pred.y_pred[i]]} {pred.confidence[i]:.0%}"
        for i in positions
    ]


# --- models and learned features ----------------------------------------------------


def layer_table(model) -> pd.DataFrame:
    """Top-level layers of a Keras model: name, type, output shape and parameters."""
    rows = []
    for layer in model.layers:
        try:
            shape = str(tuple(layer.output.shape))
        except (AttributeError, ValueError):
            shape = "?"
        rows.append(
            {
                "layer": layer.name,
                "type": type(layer).__name__,
                "output shape": shape.replace("None", "batch"),
                "parameters": int(layer.count_params()),
                "trainable": bool(layer.trainable and layer.trainable_weights),
            }
        )
    return pd.DataFrame(rows)


def penultimate_features(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Activations feeding the final softmax layer (through a nested head model if any), as
    float32: a model trained in mixed precision returns bfloat16, which scikit-learn refuses."""
    import keras

    last = model.layers[-1]
    if isinstance(last, keras.Model):  # ResNet50: backbone -> pooling -> head model
        trunk = keras.Model(model.inputs, model.layers[-2].output)
        inner = trunk.predict(x, batch_size=batch_size, verbose=0)
        return penultimate_features(last, inner, batch_size)
    extractor = keras.Model(model.inputs, model.layers[-2].output)
    return np.asarray(extractor.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)


def test_inputs(run_dir: str | os.PathLike[str], model: str, positions) -> np.ndarray:
    """Model inputs for the test images at `positions` of the run's test split."""
    from fmnist_lib import data, preprocess

    ds = data.load_fashion_mnist()
    split, standardizer = preprocess.load_split(run_dir)
    images = ds.x_test[split["test"][positions]]
    if model == "resnet50":  # raw pixels: the model resizes and normalises
        return images[..., None]
    scaled = standardizer(images)
    return scaled[..., None] if model == "cnn" else scaled


def feature_clusters(features: np.ndarray, labels: np.ndarray, seed: int) -> dict[str, float]:
    """k-means (one cluster per class) on standardised features, scored against labels."""
    z = (features - features.mean(axis=0)) / (features.std(axis=0) + 1e-8)
    clusters = eda.kmeans_labels(z, len(CLASS_NAMES), seed=seed)
    return eda.cluster_scores(clusters, labels)


def pixel_clusters(images: np.ndarray, labels: np.ndarray, seed: int, components: int = 50):
    """The same k-means on PCA scores of raw pixels, for the same images."""
    pca = eda.fit_pca(images.reshape(len(images), -1), min(components, len(images) - 1))
    clusters = eda.kmeans_labels(pca.scores, len(CLASS_NAMES), seed=seed)
    return eda.cluster_scores(clusters, labels)


def write_results(run_dir: str | os.PathLike[str], results: dict[str, Any]) -> Path:
    """Store `results` in `metrics.json` and return the file."""
    records.update_metrics(run_dir, "results", results)
    return Path(run_dir) / "metrics.json"


def outliers_in_test(both_index: list[int], n_train: int, pred: Predictions) -> dict[str, Any]:
    """The EDA's agreed outliers (train-then-test positions) that are in this run's test
    images, and how many of them the model gets wrong."""
    test_positions = {int(i) - n_train for i in both_index if i >= n_train}
    rows = np.flatnonzero(np.isin(pred.test_index, list(test_positions)))
    wrong = rows[pred.y_pred[rows] != pred.y_true[rows]]
    return {
        "agreed": len(rows),
        "wrong": len(wrong),
        "rows": [int(r) for r in rows],  # positions in the model's predictions
        "wrong_rows": [int(r) for r in wrong],
    }


# --- cost beside accuracy ---------------------------------------------------------------

NOT_MEASURED = "not measured"  # a field that the run that trained the model did not record
DAMAGED = "damaged record"


# Columns of the cost table read from the recorded `evaluate.InferenceCost`.
TIMING_COLUMNS = {
    "ms/image, batch 1": "ms_per_image_batch1",
    "ms/image, large batch": "ms_per_image_large_batch",
    "large batch": "large_batch",
    "images/s": "images_per_second",
}


def _recorded(entry: dict[str, Any], key: str, scale: float = 1.0) -> Any:
    """`entry[key]` (times `scale`), or `NOT_MEASURED` when the run did not record it."""
    value = entry.get(key)
    return NOT_MEASURED if value is None else (value * scale if scale != 1.0 else value)


def _inference(entry: dict[str, Any]) -> evaluate.InferenceCost | str:
    """The recorded inference cost, `NOT_MEASURED` if absent, `DAMAGED` if unreadable."""
    raw = entry.get("inference")
    if raw is None:
        return NOT_MEASURED
    try:
        return evaluate.InferenceCost.from_dict(raw)
    except (TypeError, ValueError):
        return DAMAGED


def cost_table(trained: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """What each model costs beside its accuracy, from `metrics.json` -> `training`:
    parameters (all and trained), training time, inference time and the saved file's size.
    A field that an older run did not record reads `NOT_MEASURED`."""
    rows = []
    for name, m in trained.items():
        cost = _inference(m)
        timings = {
            column: getattr(cost, field) if isinstance(cost, evaluate.InferenceCost) else cost
            for column, field in TIMING_COLUMNS.items()
        }
        rows.append(
            {
                "model": name,
                "test accuracy": m.get("accuracy"),
                "parameters": _recorded(m, "params"),
                "trainable parameters": _recorded(m, "trainable_params"),
                "train time (s)": _recorded(m, "train_seconds"),
                **timings,
                "model file (MB)": _recorded(m, "model_bytes", 1e-6),
            }
        )
    return pd.DataFrame(rows).set_index("model")


def style_costs(table: pd.DataFrame):
    """The cost table for display: numbers formatted, unmeasured fields in grey words."""

    def fmt(spec: str):
        return lambda v: v if isinstance(v, str) else format(v, spec)

    specs = {
        "test accuracy": ".2%",
        "parameters": ",",
        "trainable parameters": ",",
        "train time (s)": ".1f",
        "ms/image, batch 1": ".3g",
        "ms/image, large batch": ".3g",
        "large batch": ",",
        "images/s": ",.0f",
        "model file (MB)": ".1f",
    }
    return table.style.format({k: fmt(v) for k, v in specs.items() if k in table}).map(
        lambda v: "color: #888" if isinstance(v, str) else ""
    )


def _is_number(value: Any) -> bool:
    """A measured cell (Python or NumPy number), not a word such as `NOT_MEASURED`."""
    return isinstance(value, int | float | np.number) and not isinstance(value, bool)


def cost_summary(costs: pd.DataFrame, best: str) -> str:
    """What the cost table says, in sentences formatted from it: the best model's inference
    time beside the fastest's, and the models that train only part of their parameters."""
    ms = costs["ms/image, large batch"].map(lambda v: float(v) if _is_number(v) else None)
    timed = ms.dropna()
    if best in timed and len(timed) > 1:
        fastest = str(timed.idxmin())
        batch = costs.loc[best, "large batch"]
        if fastest == best:
            sentences = [f"{best}, the most accurate model, is also the fastest at inference"]
        else:
            sentences = [
                f"{best}, the most accurate model, needs {timed[best]:.3g} ms per image at a "
                f"batch of {int(batch):,}, {timed[best] / timed[fastest]:.1f} times {fastest}'s "
                f"{timed[fastest]:.3g} ms"
            ]
    else:
        sentences = ["Inference time was not measured for every model in this run"]
    for name, row in costs.iterrows():
        total, trained = row["parameters"], row["trainable parameters"]
        if (
            isinstance(total, int | float)
            and isinstance(trained, int | float)
            and trained < 0.9 * total
        ):
            sentences.append(
                f"{name} trains {int(trained):,} of its {int(total):,} parameters "
                f"({trained / total:.1%}): the rest is frozen"
            )
    return ". ".join(sentences) + "."
