"""Label errors: confident learning on out-of-fold probabilities, written here.

Confident learning (Northcutt, Jiang & Chuang, "Confident Learning: Estimating Uncertainty in
Dataset Labels", JAIR 70, 2021, arXiv:1911.00068) estimates, from a model's out-of-sample
probabilities p̂(y=j|x) and the given labels ỹ, the joint distribution of given and true labels:

- per-class thresholds `t_j`: the mean self-confidence p̂(y=j|x) over the images labelled j
  (the paper's eq. 2);
- the confident joint `C[i][j]`: images labelled i whose probability for j reaches `t_j`, each
  counted once, under the class of largest probability among those at or above threshold
  (eq. 1); images with no class above threshold are not counted;
- its calibration to the label counts, `C̃[i][j] = C[i][j] / Σ_j' C[i][j'] · |X_ỹ=i|` and
  `Q̂ = C̃ / Σ C̃` (eq. 3): `C̃` sums to n, and `n - trace(C̃)` is the estimated number of
  label errors;
- the issue set, by "prune by noise rate" (for each i ≠ j the `round(n · Q̂[i][j])` images
  labelled i of largest margin p̂_j - p̂_i, section 3.2, `Cprune_by_noise_rate`), by the
  off-diagonal of the confident joint (`Cconfusion`), or by both (their intersection, the
  paper's `C+NR`). `both` is the default: it is the most conservative, an image must be
  confidently another class *and* among the most likely errors of its pair.
- the issues ranked by self-confidence p̂_ỹ(x), lowest first (the default), or by the
  normalized margin p̂_ỹ(x) - max_{j≠ỹ} p̂_j(x), lowest first.

`cleanlab`, the authors' library, implements the same and more, but it is AGPL-3.0: this
project stays permissively licensed, so the pieces above are written here, short and tested
on planted flips (`tests/test_label_errors.py`).

The probabilities are out of fold: `out_of_fold` trains one small Keras model per fold of a
seeded `StratifiedKFold` over all 70,000 images (train then test, as `eda.combine` orders
them) and predicts the held-out fold, so every image is scored by a model that never saw it.
"""

from __future__ import annotations

import csv
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fmnist_lib.config import PACKAGE_DIR

log = logging.getLogger(__name__)

METHODS = ("both", "prune_by_noise_rate", "confusion")
RANKINGS = ("self_confidence", "normalized_margin")
LABEL_MODELS = ("mlp", "cnn")
RESULTS_FILE = "label_errors.npz"
REPORTED_FILE = PACKAGE_DIR / "static" / "reported_label_errors.csv"
RECORD_VERSION = 1
_SUM_TOLERANCE = 1e-3  # rows of float32 softmax outputs sum to 1 within this


class LabelAuditError(ValueError):
    """Probabilities or labels that confident learning cannot use."""


# --- confident learning -------------------------------------------------------------


def check_inputs(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Refuse what confident learning cannot use; return int labels and float64 probabilities.

    `probs` is (n, K), each row a distribution; `labels` is (n,) integers in [0, K), and
    every class has at least one image.
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise LabelAuditError(f"probs: expected shape (n, classes >= 2), got {probs.shape}")
    if labels.ndim != 1 or len(labels) != len(probs):
        raise LabelAuditError(
            f"labels: expected shape ({len(probs)},) to match probs {probs.shape}, "
            f"got {labels.shape}"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise LabelAuditError(f"labels: expected integers, got dtype {labels.dtype}")
    k = probs.shape[1]
    if labels.min(initial=0) < 0 or labels.max(initial=0) >= k:
        raise LabelAuditError(
            f"labels: expected values in [0, {k}), got {labels.min()}..{labels.max()}"
        )
    if not np.isfinite(probs).all() or (probs < 0).any():
        raise LabelAuditError("probs: expected finite, non-negative probabilities")
    worst = float(np.abs(probs.sum(axis=1) - 1).max())
    if worst > _SUM_TOLERANCE:
        raise LabelAuditError(
            f"probs: each row must sum to 1 (softmax outputs); the worst row is off by {worst:.3g}"
        )
    missing = np.flatnonzero(np.bincount(labels, minlength=k) == 0)
    if len(missing):
        raise LabelAuditError(
            f"labels: classes {missing.tolist()} have no image; thresholds undefined"
        )
    return labels.astype(np.int64), probs


def thresholds(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """t_j: the mean of p̂(y=j|x) over the images labelled j (eq. 2)."""
    k = probs.shape[1]
    sums = np.bincount(labels, weights=probs[np.arange(len(labels)), labels], minlength=k)
    return sums / np.bincount(labels, minlength=k)


def confident_assignment(probs: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per image, the class of largest probability among those at or above threshold; -1 if none."""
    above = probs >= t[None, :]
    masked = np.where(above, probs, -np.inf)
    return np.where(above.any(axis=1), masked.argmax(axis=1), -1)


def confident_joint(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """C[i][j]: images labelled i confidently of class j (eq. 1), (K, K) integers."""
    k = probs.shape[1]
    assigned = confident_assignment(probs, thresholds(labels, probs))
    counted = assigned >= 0
    flat = labels[counted] * k + assigned[counted]
    return np.bincount(flat, minlength=k * k).reshape(k, k)


def calibrate(joint: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """C̃: each row of the confident joint rescaled to its label count (eq. 3); sums to n.

    A row with no counted image cannot happen for thresholds from the same probabilities
    (some image labelled i reaches the mean t_i), but is kept at 0 rather than divided by 0.
    """
    counts = np.bincount(labels, minlength=len(joint)).astype(np.float64)
    rows = joint.sum(axis=1, keepdims=True).astype(np.float64)
    return np.divide(joint * counts[:, None], rows, out=np.zeros(joint.shape), where=rows > 0)


def estimated_errors(labels: np.ndarray, probs: np.ndarray) -> float:
    """n - trace(C̃): the estimated number of images whose given label is wrong."""
    calibrated = calibrate(confident_joint(labels, probs), labels)
    return float(calibrated.sum() - np.trace(calibrated))


def find_issues(labels: np.ndarray, probs: np.ndarray, method: str = "both") -> np.ndarray:
    """Boolean mask of the images flagged as label issues by `method` (one of `METHODS`)."""
    if method not in METHODS:
        raise LabelAuditError(f"method={method!r}: use one of {', '.join(METHODS)}")
    labels, probs = check_inputs(labels, probs)
    n, k = probs.shape
    t = thresholds(labels, probs)
    assigned = confident_assignment(probs, t)
    confusion = (assigned >= 0) & (assigned != labels)
    if method == "confusion":
        return confusion
    calibrated = calibrate(confident_joint(labels, probs), labels)
    prune_counts = np.rint(calibrated).astype(np.int64)  # n · Q̂[i][j] = C̃[i][j]
    by_rate = np.zeros(n, dtype=bool)
    for i in range(k):  # K x K pairs, vectorised over images
        members = np.flatnonzero(labels == i)
        for j in range(k):
            take = min(prune_counts[i, j], len(members))
            if i == j or take == 0:
                continue
            margin = probs[members, j] - probs[members, i]
            by_rate[members[np.argsort(-margin, kind="stable")[:take]]] = True
    return by_rate & confusion if method == "both" else by_rate


def rank_issues(
    labels: np.ndarray, probs: np.ndarray, mask: np.ndarray, by: str = "self_confidence"
) -> np.ndarray:
    """Indices of the flagged images, most likely errors first (`by` one of `RANKINGS`)."""
    if by not in RANKINGS:
        raise LabelAuditError(f"by={by!r}: use one of {', '.join(RANKINGS)}")
    score = issue_scores(labels, probs, by)
    flagged = np.flatnonzero(mask)
    return flagged[np.argsort(score[flagged], kind="stable")]


def issue_scores(labels: np.ndarray, probs: np.ndarray, by: str = "self_confidence") -> np.ndarray:
    """Per image: p̂_ỹ(x), or p̂_ỹ(x) - max_{j≠ỹ} p̂_j(x) (lower: more likely an error)."""
    rows = np.arange(len(labels))
    given = probs[rows, labels]
    if by == "self_confidence":
        return given
    others = probs.copy()
    others[rows, labels] = -np.inf
    return given - others.max(axis=1)


def error_rate(
    labels: np.ndarray,
    probs: np.ndarray,
    level: float = 0.95,
    replicates: int = 200,
    seed: int = 0,
) -> tuple[float, float, float]:
    """The estimated share of wrong labels, with a percentile bootstrap interval.

    Why a bootstrap over images and not a Wilson interval on the flagged count: the estimate
    is `n - trace(C̃)` over n, not a count of independent yes/no trials, and its thresholds
    and calibration move with the sample; resampling images (with replacement) and redoing
    thresholds, joint and calibration carries all of that. It measures the sampling
    uncertainty for the fixed out-of-fold probabilities, not how another model would score.

    Returns:
        `(rate, low, high)`, the interval at `level`.
    """
    if not 0 < level < 1:
        raise LabelAuditError(f"level={level!r}: use a coverage in (0, 1), e.g. 0.95")
    if replicates < 10:
        raise LabelAuditError(f"replicates={replicates!r}: use at least 10 bootstrap replicates")
    labels, probs = check_inputs(labels, probs)
    n, k = probs.shape
    rate = estimated_errors(labels, probs) / n
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(replicates):
        pick = rng.integers(0, n, n)
        sample = labels[pick]
        if np.bincount(sample, minlength=k).min() == 0:  # a class missing from the resample
            continue
        draws.append(estimated_errors(sample, probs[pick]) / n)
    low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return float(rate), float(low), float(high)


# --- out-of-fold probabilities ------------------------------------------------------


@dataclass(frozen=True)
class FoldConfig:
    """How the out-of-fold probabilities are made: model, folds and training recipe."""

    model: str = "mlp"  # mlp | cnn (the project's builders, `fmnist_lib.models`)
    folds: int = 4  # stratified folds; each image is held out once
    epochs: int = 3  # training epochs per fold
    batch_size: int = 512  # images per step
    learning_rate: float = 1e-3  # Adam's peak learning rate (cosine decay)
    seed: int = 42  # folds, initialisation and batch order
    raw_check: bool = True  # train fold 1 again on raw 0-255 pixels (the old talk's claim)

    def __post_init__(self) -> None:
        if self.model not in LABEL_MODELS:
            raise LabelAuditError(
                f"LABEL_MODEL={self.model!r}: use one of {', '.join(LABEL_MODELS)}"
            )
        for name in ("folds", "epochs", "batch_size"):
            if getattr(self, name) < (2 if name == "folds" else 1):
                raise LabelAuditError(f"{name.upper()}={getattr(self, name)!r} is too small")


@dataclass(frozen=True)
class Normalisation:
    """Fold 1 trained twice with the same seed: standardised pixels and raw 0-255 pixels."""

    standardised_accuracy: float
    raw_accuracy: float
    standardised_val: list[float]  # held-out accuracy after each epoch
    raw_val: list[float]

    @property
    def gain(self) -> float:
        """Accuracy points standardisation adds on the held-out fold."""
        return self.standardised_accuracy - self.raw_accuracy


@dataclass(frozen=True)
class OutOfFold:
    """Out-of-fold probabilities for every image, the fold that held it out, and timings."""

    probs: np.ndarray  # (n, K) float32
    fold: np.ndarray  # (n,) the fold whose model predicted the image
    fold_accuracy: list[float]
    normalisation: Normalisation | None
    seconds: float


def _inputs(model: str, images: np.ndarray, standardizer: Any | None) -> np.ndarray:
    """Images as the model takes them: standardised (or raw 0-255 floats), a channel for cnn."""
    from fmnist_lib import preprocess

    if standardizer is None:
        x = np.asarray(images, dtype=np.float32)
        return x[..., None] if model == "cnn" else x
    return preprocess.prepare(model, images, standardizer)


def _fit_predict(
    config: FoldConfig,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_held: np.ndarray,
    y_held: np.ndarray,
    seed: int,
    curve: bool,
) -> tuple[np.ndarray, list[float]]:
    """Train a fresh model on one fold's training part; predict the held-out part."""
    import keras

    from fmnist_lib import models, train
    from fmnist_lib.preprocess import make_batches

    keras.utils.set_random_seed(seed)  # the same initial weights for the same seed
    model, _ = models.build_model(config.model)
    recipe = train.TrainConfig(
        epochs=config.epochs,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        seed=seed,
    )
    batches = make_batches(x_train, train.one_hot(y_train), config.batch_size, seed)
    train.compile_model(model, recipe, total_steps=len(batches) * config.epochs)
    history = model.fit(
        batches,
        epochs=config.epochs,
        shuffle=False,
        verbose=0,
        callbacks=[train.BatchEpoch(batches)],
        validation_data=(x_held, train.one_hot(y_held)) if curve else None,
    )
    curve_acc = [float(a) for a in history.history.get("val_accuracy", [])]
    probs = model.predict(x_held, batch_size=2048, verbose=0)
    return probs.astype(np.float32), curve_acc


def out_of_fold(images: np.ndarray, labels: np.ndarray, config: FoldConfig) -> OutOfFold:
    """Out-of-fold probabilities from `config.folds` models, one per stratified fold.

    Each fold's standardisation is fitted on its training part only. With `raw_check`, fold 1
    is trained a second time, same seed and batches, on raw 0-255 pixels.

    Args:
        images: (n, 28, 28) uint8.
        labels: (n,) integer labels; every class needs at least `folds` images.
    """
    from sklearn.model_selection import StratifiedKFold

    from fmnist_lib.data import NUM_CLASSES
    from fmnist_lib.preprocess import Standardizer

    labels = np.asarray(labels)
    if images.ndim != 3 or len(images) != len(labels):
        raise LabelAuditError(
            f"images: expected (n, height, width) with n = {len(labels)} labels, got {images.shape}"
        )
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    if counts.min() < config.folds:
        raise LabelAuditError(
            f"FOLDS={config.folds}: every class needs at least that many images; the smallest "
            f"has {counts.min()} (of {len(labels)} images). Use more images or fewer folds"
        )
    start = time.perf_counter()
    splitter = StratifiedKFold(config.folds, shuffle=True, random_state=config.seed)
    probs = np.zeros((len(labels), NUM_CLASSES), dtype=np.float32)
    fold_of = np.full(len(labels), -1, dtype=np.int64)
    accuracy: list[float] = []
    normalisation = None
    for f, (tr, held) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        seed = config.seed + f
        std = Standardizer.fit(images[tr])
        curve = f == 0 and config.raw_check
        p, val = _fit_predict(
            config,
            _inputs(config.model, images[tr], std),
            labels[tr],
            _inputs(config.model, images[held], std),
            labels[held],
            seed,
            curve,
        )
        probs[held], fold_of[held] = p, f
        accuracy.append(float((p.argmax(axis=1) == labels[held]).mean()))
        log.info("fold %d/%d: held-out accuracy %.4f", f + 1, config.folds, accuracy[-1])
        if curve:
            raw_p, raw_val = _fit_predict(
                config,
                _inputs(config.model, images[tr], None),
                labels[tr],
                _inputs(config.model, images[held], None),
                labels[held],
                seed,
                curve,
            )
            raw_acc = float((raw_p.argmax(axis=1) == labels[held]).mean())
            normalisation = Normalisation(accuracy[-1], raw_acc, val, raw_val)
            log.info("fold 1 on raw 0-255 pixels: held-out accuracy %.4f", raw_acc)
    return OutOfFold(probs, fold_of, accuracy, normalisation, time.perf_counter() - start)


# --- public reports -----------------------------------------------------------------


@dataclass(frozen=True)
class Reported:
    """One label error someone reported publicly: split, 0-based index, label, source."""

    split: str  # train | test
    index: int  # 0-based position in that split's official IDX file
    given: str  # the label in the files, as the report shows it
    evidence: str  # "image compared" (the source's picture checked against ours) | "index only"
    source: str  # URL of the report
    note: str


def reported_errors(path: Path = REPORTED_FILE) -> list[Reported]:
    """The publicly reported cases in `static/reported_label_errors.csv` (sources per row)."""
    with open(path, newline="") as fh:
        rows = [r for r in csv.DictReader(line for line in fh if not line.startswith("#"))]
    return [
        Reported(r["split"], int(r["index"]), r["given"], r["evidence"], r["source"], r["note"])
        for r in rows
    ]


@dataclass(frozen=True)
class PublicCheck:
    """How many publicly reported cases the audit flags, and how many rank in its top k."""

    reported: int  # cases in the file
    audited: int  # of them, images this audit scored (all of them on full data)
    flagged: int  # of those, in the issue set
    in_top_k: int  # of those, among the `top_k` first of the ranking
    top_k: int
    flagged_cases: list[str]  # "train 28264" for each case found

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def public_check(
    reported: list[Reported],
    pooled_index: np.ndarray,
    ranking: np.ndarray,
    n_train: int,
    top_k: int,
) -> PublicCheck:
    """Compare the reported cases with the audit's ranking (positions into `pooled_index`).

    `pooled_index` maps each audited image to its place in train-then-test order
    (`eda.combine`); `n_train` is the size of the official training set.
    """
    position = {int(p): i for i, p in enumerate(pooled_index)}
    rank = {int(a): r for r, a in enumerate(ranking)}
    audited = flagged = in_top = 0
    found = []
    for case in reported:
        pooled = case.index + (n_train if case.split == "test" else 0)
        if pooled not in position:
            continue
        audited += 1
        r = rank.get(position[pooled])
        if r is not None:
            flagged += 1
            in_top += r < top_k
            found.append(f"{case.split} {case.index}")
    return PublicCheck(len(reported), audited, flagged, in_top, top_k, found)


# --- the record ---------------------------------------------------------------------


@dataclass(frozen=True)
class Suspect:
    """One image the audit flags: where it is, its label, what the model says, how sure."""

    index: int  # position in train-then-test order (`eda.combine`)
    split: str  # train | test
    split_index: int  # 0-based position in that split's official files
    given: str  # class name of the given label
    predicted: str  # class of largest out-of-fold probability
    confidence_given: float  # p̂(given label | image)
    confidence_predicted: float  # p̂(predicted | image)


@dataclass(frozen=True)
class LabelAudit:
    """What `03_label_errors` found, as written to `metrics.json` → `label_errors`."""

    model: str
    folds: int
    epochs: int
    batch_size: int
    seed: int
    n_images: int
    oof_accuracy: float  # out-of-fold accuracy against the given labels
    method: str  # issue set: one of METHODS
    ranked_by: str  # one of RANKINGS
    estimated_errors: float  # n - trace(C̃)
    rate: float  # estimated_errors / n_images
    rate_low: float
    rate_high: float
    level: float  # coverage of [rate_low, rate_high] (percentile bootstrap over images)
    flagged: int  # images in the issue set
    flagged_train: int
    flagged_test: int
    calibrated_joint: list[list[float]]  # C̃, given label (rows) by true label (columns)
    suspects: list[Suspect]  # the first of the ranking
    public_reports: PublicCheck
    normalisation: Normalisation | None
    seconds: float  # training and audit, wall clock
    version: int = RECORD_VERSION
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.normalisation is not None:
            out["normalisation"]["gain"] = self.normalisation.gain
        return out

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> LabelAudit:
        """Read a record back; a record of another version or shape raises `LabelAuditError`."""
        if not isinstance(record, dict) or record.get("version") != RECORD_VERSION:
            got = record.get("version") if isinstance(record, dict) else type(record).__name__
            raise LabelAuditError(
                f"label_errors record: expected version {RECORD_VERSION}, got {got!r}"
            )
        try:
            values = dict(record)
            values["suspects"] = [Suspect(**s) for s in record["suspects"]]
            values["public_reports"] = PublicCheck(**record["public_reports"])
            norm = record.get("normalisation")
            if norm is not None:
                norm = {k: v for k, v in norm.items() if k != "gain"}
                values["normalisation"] = Normalisation(**norm)
            return cls(**values)
        except (KeyError, TypeError) as exc:
            raise LabelAuditError(f"label_errors record is damaged: {exc}") from None


@dataclass(frozen=True)
class AuditConfig:
    """How confident learning judges the probabilities, and what the record keeps."""

    suspects: int = 24  # how many of the ranking the record lists
    method: str = "both"  # one of METHODS (`find_issues`)
    ranked_by: str = "self_confidence"  # one of RANKINGS (`rank_issues`)
    level: float = 0.95  # coverage of the error rate's bootstrap interval
    replicates: int = 200  # bootstrap replicates of the error rate
    top_k: int = 1000  # ranking depth within which reported cases count as found near the top

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise LabelAuditError(f"method={self.method!r}: use one of {', '.join(METHODS)}")
        if self.ranked_by not in RANKINGS:
            raise LabelAuditError(f"ranked_by={self.ranked_by!r}: use one of {', '.join(RANKINGS)}")
        if not 0 < self.level < 1:
            raise LabelAuditError(f"LEVEL={self.level!r} must be in (0, 1)")
        for name in ("suspects", "replicates", "top_k"):
            if getattr(self, name) < 1:
                raise LabelAuditError(f"{name.upper()}={getattr(self, name)!r} must be at least 1")


def audit(
    labels: np.ndarray,
    oof: OutOfFold,
    config: FoldConfig,
    pooled_index: np.ndarray,
    n_train: int,
    settings: AuditConfig = AuditConfig(),
    reported: list[Reported] | None = None,
) -> tuple[LabelAudit, np.ndarray]:
    """Confident learning on `oof`: the record, and the ranking (positions of flagged images).

    Args:
        labels: given labels of the audited images.
        pooled_index: each audited image's position in train-then-test order.
        n_train: the number of official training images (test positions follow them).
        settings: the method, ranking, interval and what the record keeps.
        reported: publicly reported cases to check (default: `reported_errors()`).
    """
    from fmnist_lib.data import CLASS_NAMES

    start = time.perf_counter()
    labels, probs = check_inputs(labels, oof.probs)
    mask = find_issues(labels, probs, settings.method)
    ranking = rank_issues(labels, probs, mask, settings.ranked_by)
    rate, low, high = error_rate(labels, probs, settings.level, settings.replicates, config.seed)
    calibrated = calibrate(confident_joint(labels, probs), labels)
    predicted = probs.argmax(axis=1)
    in_test = np.asarray(pooled_index) >= n_train
    rows = []
    for pos in ranking[: settings.suspects]:
        pooled = int(pooled_index[pos])
        test = pooled >= n_train
        rows.append(
            Suspect(
                index=pooled,
                split="test" if test else "train",
                split_index=pooled - n_train if test else pooled,
                given=CLASS_NAMES[labels[pos]],
                predicted=CLASS_NAMES[predicted[pos]],
                confidence_given=round(float(probs[pos, labels[pos]]), 4),
                confidence_predicted=round(float(probs[pos, predicted[pos]]), 4),
            )
        )
    record = LabelAudit(
        model=config.model,
        folds=config.folds,
        epochs=config.epochs,
        batch_size=config.batch_size,
        seed=config.seed,
        n_images=len(labels),
        oof_accuracy=float((predicted == labels).mean()),
        method=settings.method,
        ranked_by=settings.ranked_by,
        estimated_errors=round(rate * len(labels), 1),
        rate=rate,
        rate_low=low,
        rate_high=high,
        level=settings.level,
        flagged=int(mask.sum()),
        flagged_train=int((mask & ~in_test).sum()),
        flagged_test=int((mask & in_test).sum()),
        calibrated_joint=np.round(calibrated, 1).tolist(),
        suspects=rows,
        public_reports=public_check(
            reported if reported is not None else reported_errors(),
            pooled_index,
            ranking,
            n_train,
            settings.top_k,
        ),
        normalisation=oof.normalisation,
        seconds=round(oof.seconds + time.perf_counter() - start, 1),
    )
    return record, ranking


def save_results(
    run_dir: str | Path,
    labels: np.ndarray,
    pooled_index: np.ndarray,
    oof: OutOfFold,
    ranking: np.ndarray,
) -> Path:
    """Write `label_errors.npz`: every out-of-fold probability, labels, folds and the ranking.

    `ranking` holds positions into the audited images; `ranking_index` the same images in
    train-then-test order.
    """
    path = Path(run_dir) / RESULTS_FILE
    np.savez_compressed(
        path,
        probs=oof.probs,
        labels=np.asarray(labels),
        index=np.asarray(pooled_index),
        fold=oof.fold,
        ranking=ranking,
        ranking_index=np.asarray(pooled_index)[ranking],
    )
    return path


def reported_table(
    reported: list[Reported],
    labels: np.ndarray,
    probs: np.ndarray,
    pooled_index: np.ndarray,
    ranking: np.ndarray,
    n_train: int,
):
    """One row per reported case this audit scored: its labels, probabilities and rank.

    `rank` is the 1-based place in the ranking of flagged images, 0 when not flagged; flagged
    cases come first, by rank.
    """
    import pandas as pd

    from fmnist_lib.data import CLASS_NAMES

    position = {int(p): i for i, p in enumerate(pooled_index)}
    rank = {int(a): r + 1 for r, a in enumerate(ranking)}
    rows = []
    for case in reported:
        pos = position.get(case.index + (n_train if case.split == "test" else 0))
        if pos is None:
            continue
        top = int(probs[pos].argmax())
        rows.append(
            {
                "split": case.split,
                "index": case.index,
                "given": CLASS_NAMES[labels[pos]],
                "model": CLASS_NAMES[top],
                "p(given)": round(float(probs[pos, labels[pos]]), 3),
                "p(model)": round(float(probs[pos, top]), 3),
                "rank": rank.get(pos, 0),
                "evidence": case.evidence,
            }
        )
    columns = ["split", "index", "given", "model", "p(given)", "p(model)", "rank", "evidence"]
    table = pd.DataFrame(rows, columns=columns)
    unflagged_last = table["rank"].where(table["rank"] > 0, len(ranking) + 1)
    return table.iloc[np.argsort(unflagged_last.to_numpy(), kind="stable")].reset_index(drop=True)
