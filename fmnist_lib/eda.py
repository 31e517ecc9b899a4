"""Exploratory analysis: description, balance, pixels, duplicates, outliers and clusters.

Every function is vectorised over images; the only Python loops run over the ten classes
or over the handful of duplicate groups and outliers that are shown.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import cKDTree
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.neighbors import NearestNeighbors

from fmnist_lib.data import CLASS_NAMES, CSV_HEADER, FashionMNIST


def describe(ds: FashionMNIST) -> pd.DataFrame:
    """One row per split: size, image shape, dtype, source, file paths and MD5s."""
    rows = []
    for split, x, y in (("train", ds.x_train, ds.y_train), ("test", ds.x_test, ds.y_test)):
        images, labels = ds.files.get(f"{split}_images"), ds.files.get(f"{split}_labels")
        rows.append(
            {
                "split": split,
                "images": len(x),
                "image shape": "x".join(map(str, x.shape[1:])),
                "dtype": str(x.dtype),
                "labels": len(y),
                "source": ds.source,
                "images MD5": images.md5 if images else "",
                "labels MD5": labels.md5 if labels else "",
                "verified": bool(images and labels and images.verified and labels.verified),
            }
        )
    return pd.DataFrame(rows).set_index("split")


def class_table() -> pd.DataFrame:
    """The ten class ids and names."""
    return pd.DataFrame({"class": list(CLASS_NAMES)}).rename_axis("id")


def flat_view(images: np.ndarray, labels: np.ndarray, n: int = 1) -> pd.DataFrame:
    """The first `n` images as rows of the 785-column CSV layout (label, pixel1..784)."""
    flat = images[:n].reshape(n, -1)
    return pd.DataFrame(np.column_stack([labels[:n], flat]), columns=CSV_HEADER)


def class_distribution(ds: FashionMNIST) -> pd.DataFrame:
    """Images per class for train and test, as counts and shares."""
    counts = pd.DataFrame(
        {
            "train": np.bincount(ds.y_train, minlength=len(CLASS_NAMES)),
            "test": np.bincount(ds.y_test, minlength=len(CLASS_NAMES)),
        },
        index=list(CLASS_NAMES),
    )
    shares = counts / counts.sum()
    return counts.join(shares.add_suffix(" share"))


def is_balanced(counts: pd.Series, tolerance: float = 0.05) -> bool:
    """True when every class count is within `tolerance` of the mean count."""
    mean = counts.mean()
    return bool(((counts - mean).abs() <= tolerance * mean).all())


# --- pixels ------------------------------------------------------------------------


def pixel_stats(images: np.ndarray, labels: np.ndarray) -> dict[str, object]:
    """Overall mean/std (0..255 scale), share of zero pixels, and mean ink per class."""
    flat = images.reshape(len(images), -1)
    per_image_mean = flat.mean(axis=1, dtype=np.float64)
    per_class = pd.Series(
        np.bincount(labels, weights=per_image_mean) / np.bincount(labels),
        index=list(CLASS_NAMES),
        name="mean ink",
    )
    return {
        "mean": float(flat.mean(dtype=np.float64)),
        "std": float(flat.std(dtype=np.float64)),
        "zero_share": float((flat == 0).mean()),
        "per_class_mean": per_class,
    }


@dataclass(frozen=True)
class Combined:
    """Train then test as one set: images (n, 28, 28), labels and the split of each image."""

    images: np.ndarray
    labels: np.ndarray
    split: np.ndarray  # "train" or "test" per image

    @property
    def flat(self) -> np.ndarray:
        """The images as rows of 784 pixels (a view, no copy)."""
        return self.images.reshape(len(self.images), -1)


def combine(ds: FashionMNIST) -> Combined:
    """All 70,000 images in one array, train first, with a split marker."""
    split = np.repeat(np.array(["train", "test"]), [len(ds.y_train), len(ds.y_test)])
    return Combined(
        np.concatenate([ds.x_train, ds.x_test]), np.concatenate([ds.y_train, ds.y_test]), split
    )


def pixel_table(images: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """Per class present: mean ink, pixel std and share of zero pixels (0..255 scale)."""
    flat = images.reshape(len(images), -1)
    rows = {
        CLASS_NAMES[c]: {
            "mean ink": flat[labels == c].mean(dtype=np.float64),
            "pixel std": flat[labels == c].std(dtype=np.float64),
            "zero share": (flat[labels == c] == 0).mean(),
        }
        for c in np.unique(labels)
    }
    return pd.DataFrame(rows).T


def class_images(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard-deviation image of each class, each (10, 28, 28) float64."""
    means = np.stack([images[labels == c].mean(axis=0, dtype=np.float64) for c in range(10)])
    stds = np.stack([images[labels == c].std(axis=0, dtype=np.float64) for c in range(10)])
    return means, stds


def pixel_histogram(images: np.ndarray) -> np.ndarray:
    """How many pixels take each of the 256 grey levels."""
    return np.bincount(images.ravel(), minlength=256)


# --- PCA ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PCAResult:
    """A fitted PCA: what the notebooks and outlier scores read (float64)."""

    mean: np.ndarray  # (d,)
    components: np.ndarray  # (k, d), orthonormal rows
    explained_ratio: np.ndarray  # (min(n, d),), the full spectrum, not only the k kept
    scores: np.ndarray  # (n, k)
    residual: np.ndarray  # (n,), L2 reconstruction error from the k components


def fit_pca(x: np.ndarray, n_components: int, scale: float = 255.0) -> PCAResult:
    """PCA of the rows of `x` (divided by `scale` first), keeping `n_components`.

    `sklearn.decomposition.PCA` with the covariance solver (one d x d product, cheaper than
    an SVD for n >> d) is fitted with every component, for the whole variance spectrum;
    only the first `n_components` are projected on, so no (n, d) score array is made.
    """
    xc = x.reshape(len(x), -1).astype(np.float64)
    if n_components > min(xc.shape):
        raise ValueError(
            f"n_components={n_components} exceeds min(rows, features) = {min(xc.shape)}"
        )
    xc /= scale
    pca = PCA(svd_solver="covariance_eigh").fit(xc)
    components = pca.components_[:n_components]
    xc -= pca.mean_
    scores = xc @ components.T  # what pca.transform gives, for the kept components only
    residual_sq = np.einsum("ij,ij->i", xc, xc) - np.einsum("ij,ij->i", scores, scores)
    return PCAResult(
        pca.mean_,
        components,
        pca.explained_variance_ratio_,
        scores,
        np.sqrt(np.clip(residual_sq, 0, None)),
    )


def variance_table(explained_ratio: np.ndarray, levels=(0.5, 0.8, 0.9, 0.95, 0.99)) -> pd.Series:
    """Number of components needed to explain each share of the variance."""
    cumulative = np.cumsum(explained_ratio)
    needed = np.searchsorted(cumulative, np.asarray(levels) - 1e-12) + 1
    return pd.Series(needed, index=[f"{level:.0%}" for level in levels], name="components")


# --- duplicates --------------------------------------------------------------------


def byte_groups(flat: np.ndarray) -> np.ndarray:
    """A group id per row; rows share an id exactly when their raw bytes are identical.

    Sorting the rows as opaque byte strings is an exact hash table: no collisions.
    """
    rows = np.ascontiguousarray(flat.reshape(len(flat), -1))
    keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    return np.unique(keys, return_inverse=True)[1].ravel()


def exact_duplicates(flat: np.ndarray, split: np.ndarray) -> tuple[dict[str, int], np.ndarray]:
    """Count exact copies and pair each copy with the first image of its bytes.

    Returns:
        Counts: "within_train" and "within_test" (images beyond the first of their bytes
        in that split) and "train_test" (test images whose bytes also occur in train);
        and an (m, 2) array of index pairs (first occurrence, copy).
    """
    group = byte_groups(flat)
    train, test = split == "train", split == "test"
    counts = {
        "within_train": int(train.sum() - len(np.unique(group[train]))),
        "within_test": int(test.sum() - len(np.unique(group[test]))),
        "train_test": int(np.isin(group[test], group[train]).sum()),
    }
    first = np.unique(group, return_index=True)[1][group]
    copies = np.flatnonzero(first != np.arange(len(group)))
    return counts, np.column_stack([first[copies], copies])


def near_pairs(
    scores: np.ndarray, threshold: float, screen_dims: int = 12
) -> tuple[np.ndarray, np.ndarray]:
    """All index pairs (i < j) whose rows of `scores` lie within `threshold` (Euclidean).

    A k-d tree finds candidates in the first `screen_dims` columns; a projection never
    lengthens a distance, so no pair is missed, and each is then checked on all columns.
    Returns the (m, 2) pairs and their distances, closest first.
    """
    screen = np.ascontiguousarray(scores[:, : min(screen_dims, scores.shape[1])])
    pairs = cKDTree(screen).query_pairs(threshold, output_type="ndarray").reshape(-1, 2)
    dist = np.linalg.norm(scores[pairs[:, 0]] - scores[pairs[:, 1]], axis=1)
    keep = dist <= threshold
    order = np.argsort(dist[keep], kind="stable")
    return pairs[keep][order], dist[keep][order]


def pair_table(pairs: np.ndarray, distance: np.ndarray, data: Combined) -> pd.DataFrame:
    """One row per pair: indices, splits, class names, label agreement, kind, exactness."""
    i, j = pairs[:, 0], pairs[:, 1]
    names = np.asarray(CLASS_NAMES)
    si, sj = data.split[i], data.split[j]
    flat = data.flat
    return pd.DataFrame(
        {
            "i": i,
            "j": j,
            "label i": names[data.labels[i]],
            "label j": names[data.labels[j]],
            "labels agree": data.labels[i] == data.labels[j],
            "kind": np.where(si == sj, np.char.add("within ", si.astype(str)), "train/test"),
            "exact": (flat[i] == flat[j]).all(axis=1),
            "distance": distance,
        }
    )


def pair_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Per kind: pairs, distinct images in them, and pairs whose labels disagree."""
    kinds = ["within train", "within test", "train/test"]
    rows = {}
    for kind in kinds:  # three kinds, not images
        part = table[table["kind"] == kind]
        rows[kind] = {
            "pairs": len(part),
            "images": len(np.union1d(part["i"], part["j"])),
            "labels disagree": int((~part["labels agree"]).sum()),
        }
    return pd.DataFrame(rows).T.rename_axis("kind")


def test_images_matched(table: pd.DataFrame) -> int:
    """Distinct test images that have a partner in train (train comes first, so `j`)."""
    return int(table.loc[table["kind"] == "train/test", "j"].nunique())


# --- outliers ----------------------------------------------------------------------


def robust_z(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Robust z-score within each group: (x - median) / (1.4826 MAD).

    The MAD scaled to the standard deviation of a normal (`scale="normal"`); this is the
    modified z-score of Iglewicz & Hoaglin, 0.6745 (x - median) / MAD, to 1.5e-5.
    """
    out = np.empty(len(values), dtype=np.float64)
    for g in np.unique(groups):
        mask = groups == g
        sigma = stats.median_abs_deviation(values[mask], scale="normal")
        if sigma == 0:
            raise ValueError(f"group {g}: median absolute deviation is 0; z-scores undefined")
        out[mask] = (values[mask] - np.median(values[mask])) / sigma
    return out


def centroid_distances(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Distance from every row to every class centroid, (n, n_classes)."""
    classes = np.unique(labels)
    centroids = np.stack([scores[labels == c].mean(axis=0) for c in classes])
    sq = (
        np.einsum("ij,ij->i", scores, scores)[:, None]
        - 2 * scores @ centroids.T
        + np.einsum("ij,ij->i", centroids, centroids)[None, :]
    )
    return np.sqrt(np.clip(sq, 0, None))


def outlier_scores(pca: PCAResult, labels: np.ndarray) -> pd.DataFrame:
    """Two per-class outlier scores per image, as robust z-scores.

    `centroid z`: distance to the own class centroid inside the PCA space;
    `reconstruction z`: the PCA reconstruction error, the part outside that space.
    `nearest class` is the class whose centroid is closest.
    """
    dist = centroid_distances(pca.scores, labels)
    return pd.DataFrame(
        {
            "label": labels,
            "centroid z": robust_z(dist[np.arange(len(labels)), labels], labels),
            "reconstruction z": robust_z(pca.residual, labels),
            "nearest class": dist.argmin(axis=1),
        }
    )


def outlier_counts(scores: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Per class: images above `threshold` by each method and by both."""
    flags = pd.DataFrame(
        {
            "centroid": scores["centroid z"] > threshold,
            "reconstruction": scores["reconstruction z"] > threshold,
        }
    )
    flags["both"] = flags["centroid"] & flags["reconstruction"]
    counts = flags.groupby(scores["label"]).sum().reindex(range(len(CLASS_NAMES)), fill_value=0)
    counts.index = pd.Index(CLASS_NAMES, name="class")
    counts.loc["total"] = counts.sum()
    return counts


def outlier_agreement(scores: pd.DataFrame, threshold: float, top: float = 0.01) -> dict:
    """How far the two methods agree: rank correlation, Jaccard of flags, top-share overlap."""
    a, b = scores["centroid z"].to_numpy(), scores["reconstruction z"].to_numpy()
    flag_a, flag_b = a > threshold, b > threshold
    union = (flag_a | flag_b).sum()
    k = max(1, int(round(top * len(a))))
    top_a, top_b = np.argsort(-a)[:k], np.argsort(-b)[:k]
    return {
        "spearman": float(stats.spearmanr(a, b).statistic),
        "jaccard": float((flag_a & flag_b).sum() / union) if union else 0.0,
        "top_share": top,
        "top_overlap": float(len(np.intersect1d(top_a, top_b)) / k),
    }


def top_outliers(scores: pd.DataFrame, per_class: int) -> pd.DataFrame:
    """The `per_class` highest-scoring images of each class by the mean of both z-scores."""
    combined = (scores["centroid z"] + scores["reconstruction z"]) / 2
    ranked = scores.assign(combined=combined).sort_values("combined", ascending=False)
    return (
        ranked.groupby("label", sort=True)
        .head(per_class)
        .sort_values(["label", "combined"], ascending=[True, False])
    )


def neighbour_disagreements(
    scores: np.ndarray,
    labels: np.ndarray,
    outliers: pd.DataFrame,
    threshold: float,
    k: int = 10,
    vote: float = 0.7,
) -> pd.DataFrame:
    """Outliers (by either method) whose `k` nearest neighbours mostly carry another label.

    Neighbours are searched in `scores` (the PCA space) among all images. An outlier is listed
    when at least `vote` of its neighbours share one label other than its own: it sits among
    another class. That makes it ambiguous or atypical; whether its label is wrong takes a
    person looking at it. Returns one row per such image (index: image), strongest vote first.
    """
    flagged = np.flatnonzero(
        (outliers["centroid z"] > threshold) | (outliers["reconstruction z"] > threshold)
    )
    neighbours = NearestNeighbors(n_neighbors=k + 1).fit(scores)
    idx = neighbours.kneighbors(scores[flagged], return_distance=False)
    # Drop the image itself (not always first when an exact copy ties at distance 0).
    not_self = np.argsort(idx == flagged[:, None], axis=1, kind="stable")
    idx = np.take_along_axis(idx, not_self, axis=1)[:, :k]
    n_classes = max(len(CLASS_NAMES), int(labels.max()) + 1)
    votes = (labels[idx][..., None] == np.arange(n_classes)).sum(axis=1)
    majority, share = votes.argmax(axis=1), votes.max(axis=1) / k
    found = (majority != labels[flagged]) & (share >= vote)
    rows = outliers.iloc[flagged[found]]
    table = pd.DataFrame(
        {
            "label": rows["label"],
            "neighbours' label": majority[found],
            "vote": share[found],
            "centroid z": rows["centroid z"],
            "reconstruction z": rows["reconstruction z"],
            "nearest centroid": rows["nearest class"],
        }
    )
    combined = (table["centroid z"] + table["reconstruction z"]) / 2
    order = np.lexsort((-combined.to_numpy(), -table["vote"].to_numpy()))
    return table.iloc[order]


def flagged_outliers(scores: pd.DataFrame, threshold: float) -> dict[str, np.ndarray]:
    """Images flagged by either detector and by both (row positions of `scores`)."""
    a = scores["centroid z"].to_numpy() > threshold
    b = scores["reconstruction z"].to_numpy() > threshold
    return {"either": np.flatnonzero(a | b), "both": np.flatnonzero(a & b)}


def pixel_range_check(images: np.ndarray) -> dict[str, int]:
    """The slide talk's outlier check, on pixel values: images with a value outside 0-255,
    with no ink at all, or of one flat grey level."""
    flat = images.reshape(len(images), -1).astype(np.int64)
    low, high = flat.min(axis=1), flat.max(axis=1)
    return {
        "out_of_range": int(((low < 0) | (high > 255)).sum()),
        "blank": int((high == 0).sum()),
        "flat": int(((high == low) & (high > 0)).sum()),
    }


# --- clustering --------------------------------------------------------------------


def kmeans_labels(scores: np.ndarray, k: int, seed: int, n_init: int = 4) -> np.ndarray:
    """k-means cluster of each row (k-means++ start, best of `n_init` runs)."""
    return KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(scores)


def contingency(clusters: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """Images per (cluster, class); clusters renumbered in the order of their majority class."""
    table = pd.crosstab(clusters, labels).reindex(columns=range(len(CLASS_NAMES)), fill_value=0)
    counts = table.to_numpy()
    table = table.iloc[np.lexsort((-counts.max(axis=1), counts.argmax(axis=1)))]
    majority = table.to_numpy().argmax(axis=1)
    table.index = [f"{r} ({CLASS_NAMES[m]})" for r, m in enumerate(majority)]  # renumbered
    table.index.name = "cluster (majority class)"
    table.columns = pd.Index(CLASS_NAMES, name="class")
    return table


def cluster_scores(clusters: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """NMI, ARI and purity (share of images in their cluster's majority class)."""
    table = pd.crosstab(clusters, labels).to_numpy()
    return {
        "nmi": float(normalized_mutual_info_score(labels, clusters)),
        "ari": float(adjusted_rand_score(labels, clusters)),
        "purity": float(table.max(axis=1).sum() / table.sum()),
    }


def merged_classes(table: pd.DataFrame, share: float) -> dict[str, list]:
    """Which classes k-means merges and splits, read off a cluster x class table.

    A cluster merges the classes of which it holds at least `share` of the images; a
    class is split when two or more clusters hold that share of it; a class is absorbed
    when no cluster has it as its majority class.
    """
    member = table / table.sum(axis=0) >= share  # clusters x classes
    merged: list[list[str]] = []
    for _, row in member.iterrows():  # one row per cluster
        names = row.index[row].tolist()
        if len(names) > 1 and names not in merged:
            merged.append(names)
    majority = set(table.to_numpy().argmax(axis=1))
    return {
        "merged": merged,
        "split": member.columns[member.sum(axis=0) > 1].tolist(),
        "absorbed": [name for c, name in enumerate(table.columns) if c not in majority],
    }


def recovered_classes(table: pd.DataFrame, share: float = 0.5) -> list[str]:
    """Classes that k-means finds on its own: one cluster holds at least `share` of the class,
    and the class is at least `share` of that cluster."""
    counts = table.to_numpy().astype(float)
    of_class = counts / counts.sum(axis=0, keepdims=True)
    of_cluster = counts / counts.sum(axis=1, keepdims=True)
    found = ((of_class >= share) & (of_cluster >= share)).any(axis=0)
    return [name for name, hit in zip(table.columns, found, strict=True) if hit]


def sample_indices(n: int, size: int, seed: int) -> np.ndarray:
    """`size` distinct indices out of `n` (all of them when `size` >= `n`), sorted."""
    if size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


def umap_embedding(scores: np.ndarray, seed: int, n_neighbors: int = 15) -> np.ndarray:
    """A 2-D UMAP of the rows, from exact neighbours (brute force, 200 epochs)."""
    umap_cls = _import_umap()
    dist, idx = NearestNeighbors(n_neighbors=n_neighbors).fit(scores).kneighbors(scores)
    reducer = umap_cls(
        n_neighbors=n_neighbors,
        min_dist=0.1,
        n_epochs=200,
        random_state=seed,
        precomputed_knn=(idx, dist, None),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # n_jobs=1 because of random_state
        return reducer.fit_transform(scores)


def _import_umap():
    """umap.UMAP, without loading TensorFlow: umap-learn imports it only for ParametricUMAP.

    Measured on the 2-core CPU machine (AMD EPYC), 2026-11-28, umap-learn 0.5.12, fresh
    processes: `import umap` took 4.6-5.7 s and loaded TensorFlow and Keras; with TensorFlow
    blocked, 1.9-2.1 s and neither. Notebook 01 loads no TensorFlow otherwise, so it saves
    about 3 s there (and TensorFlow's memory); where TensorFlow is loaded already, nothing
    is blocked.

    umap-learn imports tqdm's notebook bar, which warns (naming the venv's path) that
    ipywidgets is absent; we draw no progress bars, so that warning is dropped here.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        if "umap" not in sys.modules and "tensorflow" not in sys.modules:
            sys.modules["tensorflow"] = None  # makes `import tensorflow` raise ImportError
            try:
                import umap
            finally:
                del sys.modules["tensorflow"]
        import umap

    return umap.UMAP
