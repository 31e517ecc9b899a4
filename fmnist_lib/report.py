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
    whose: str = "published"  # or "original talk": the work this project revisits


# Published reference points, quoted beside our numbers so a reader can place them.
ANCHORS: tuple[Anchor, ...] = (
    Anchor(
        "Human, non-expert (crowd-sourced)",
        0.835,
        "Fashion-MNIST repository README, human evaluation (Xiao, Rasul & Vollgraf, 2017)",
    ),
    Anchor(
        "ResNet50, frozen ImageNet backbone, 32 px, GAP + BN + Dense head",
        0.857,
        "the original analysis this project revisits, as quoted in issue 5",
        whose="original talk",
    ),
    Anchor(
        "Dense (fully connected) network",
        0.88,
        "typical MLP result, about 88% (Fashion-MNIST benchmark, Xiao et al., 2017)",
    ),
    Anchor(
        "Best scikit-learn classifier (SVC)",
        0.897,
        "Fashion-MNIST benchmark of scikit-learn classifiers (Xiao et al., 2017, arXiv:1708.07747)",
    ),
    Anchor(
        "Published state of the art",
        0.969,
        "best published test accuracy, about 96.9%, as quoted in issue 5",
    ),
)


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
