"""Tests for fmnist_lib.eda on synthetic data with planted, known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA

from fmnist_lib import eda
from fmnist_lib.data import CLASS_NAMES, FashionMNIST


def random_images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


def make_dataset(x_train, y_train, x_test, y_test) -> FashionMNIST:
    return FashionMNIST(x_train, y_train, x_test, y_test, source="synthetic")


@pytest.fixture
def planted_duplicates():
    """50 train and 20 test random images with three planted exact copies."""
    x_train, x_test = random_images(50, 0), random_images(20, 1)
    x_train[10] = x_train[3]  # within train
    x_test[5] = x_test[2]  # within test
    x_test[7] = x_train[20]  # across the split
    y_train, y_test = np.arange(50) % 10, np.arange(20) % 10
    y_train[10], y_test[7] = y_train[3], y_train[20]  # the copies keep their labels
    return eda.combine(make_dataset(x_train, y_train, x_test, y_test))


# --- description and pixels -----------------------------------------------------------


def test_combine_puts_train_first_and_marks_splits():
    ds = make_dataset(random_images(5, 0), np.arange(5), random_images(3, 1), np.arange(3))
    both = eda.combine(ds)
    assert both.images.shape == (8, 28, 28)
    assert both.flat.shape == (8, 784)
    assert list(both.split) == ["train"] * 5 + ["test"] * 3
    np.testing.assert_array_equal(both.images[5], ds.x_test[0])


def test_is_balanced_detects_a_short_class():
    assert eda.is_balanced(pd.Series([100] * 10))
    assert not eda.is_balanced(pd.Series([100] * 9 + [80]))


def test_pixel_table_on_constant_classes():
    images = np.zeros((4, 28, 28), dtype=np.uint8)
    images[2:] = 200  # class 1 is all ink, class 0 all background
    table = eda.pixel_table(images, np.array([0, 0, 1, 1]))
    assert table.loc[CLASS_NAMES[0], "zero share"] == 1.0
    assert table.loc[CLASS_NAMES[1], "mean ink"] == 200.0
    assert table.loc[CLASS_NAMES[1], "pixel std"] == 0.0


def test_class_images_mean_and_std_per_pixel():
    images = np.zeros((20, 28, 28), dtype=np.uint8)
    labels = np.arange(20) % 10
    images[labels == 3, 0, 0] = [10, 30]
    means, stds = eda.class_images(images, labels)
    assert means[3, 0, 0] == 20.0
    assert stds[3, 0, 0] == 10.0
    assert means[4, 0, 0] == 0.0


def test_pixel_histogram_counts_each_grey_level():
    images = np.array([[[0, 0], [255, 7]]], dtype=np.uint8)
    hist = eda.pixel_histogram(images)
    assert hist.shape == (256,)
    assert (hist[0], hist[7], hist[255], hist.sum()) == (2, 1, 1, 4)


# --- PCA ------------------------------------------------------------------------------


def test_fit_pca_matches_sklearn_and_reconstruction_error():
    x = np.random.default_rng(0).normal(size=(300, 12)) @ np.diag(np.arange(12, 0, -1))
    ours = eda.fit_pca(x, 4, scale=1.0)
    ref = PCA(n_components=4).fit(x)
    np.testing.assert_allclose(ours.explained_ratio[:4], ref.explained_variance_ratio_)
    assert ours.explained_ratio.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(np.abs(ours.scores), np.abs(ref.transform(x)), atol=1e-8)
    error = np.linalg.norm(x - ref.inverse_transform(ref.transform(x)), axis=1)
    np.testing.assert_allclose(ours.residual, error, atol=1e-8)


def test_fit_pca_rejects_too_many_components():
    with pytest.raises(ValueError, match="exceeds"):
        eda.fit_pca(np.zeros((5, 3)), 4)


def test_variance_table_counts_components_per_level():
    table = eda.variance_table(np.array([0.5, 0.3, 0.15, 0.05]), levels=(0.5, 0.8, 0.9, 0.99))
    assert table.tolist() == [1, 2, 3, 4]


# --- duplicates -----------------------------------------------------------------------


def test_exact_duplicates_finds_planted_copies(planted_duplicates):
    counts, pairs = eda.exact_duplicates(planted_duplicates.flat, planted_duplicates.split)
    assert counts == {"within_train": 1, "within_test": 1, "train_test": 1}
    assert {tuple(p) for p in pairs.tolist()} == {(3, 10), (52, 55), (20, 57)}


def test_exact_duplicates_none_in_random_images():
    both = eda.combine(make_dataset(random_images(30, 2), np.zeros(30, int), random_images(10, 3),
                                    np.zeros(10, int)))  # fmt: skip
    counts, pairs = eda.exact_duplicates(both.flat, both.split)
    assert counts == {"within_train": 0, "within_test": 0, "train_test": 0}
    assert len(pairs) == 0


def test_byte_groups_separate_images_one_byte_apart():
    images = np.zeros((3, 28, 28), dtype=np.uint8)
    images[1, 27, 27] = 1
    group = eda.byte_groups(images.reshape(3, -1))
    assert group[0] == group[2] != group[1]


def test_near_pairs_finds_planted_near_duplicates_only():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(400, 20))  # random points lie ~6 apart
    scores[100] = scores[7] + 0.01 * rng.normal(size=20)
    scores[300] = scores[250]
    scores[300, -1] += 0.05  # close, differing only in a column the screen ignores
    scores[399] = scores[0]
    scores[399, -1] += 1.0  # identical on the screened columns, far on the last one
    pairs, dist = eda.near_pairs(scores, threshold=0.1, screen_dims=5)
    assert {tuple(p) for p in pairs.tolist()} == {(7, 100), (250, 300)}
    assert np.all(np.diff(dist) >= 0)
    assert dist.max() <= 0.1


def test_pair_table_kinds_labels_and_exactness(planted_duplicates):
    data = planted_duplicates
    pairs = np.array([[3, 10], [52, 55], [20, 57], [0, 1]])
    table = eda.pair_table(pairs, np.zeros(4), data)
    assert table["kind"].tolist() == ["within train", "within test", "train/test", "within train"]
    assert table["exact"].tolist() == [True, True, True, False]
    assert table["labels agree"].tolist() == [True, False, True, False]
    counts = eda.pair_counts(table)
    assert counts.loc["within train"].tolist() == [2, 4, 1]  # pairs, images, disagreements
    assert counts.loc["within test"].tolist() == [1, 2, 1]
    assert counts.loc["train/test", "labels disagree"] == 0
    assert eda.test_images_matched(table) == 1


# --- outliers -------------------------------------------------------------------------


def test_robust_z_known_values_and_zero_mad():
    # median 3, MAD 1; a second group, shifted and spread 10x, gets the same scores
    x = np.array([1.0, 2, 3, 4, 100])
    z = eda.robust_z(np.concatenate([x, 10 * x + 5]), np.repeat([0, 1], 5))
    assert z[2] == 0.0
    assert z[4] == pytest.approx(97 / 1.482602218505602, rel=1e-12)  # 1 / Phi^-1(3/4)
    assert z[4] == pytest.approx(0.6745 * 97, rel=2e-5)  # the Iglewicz-Hoaglin constant
    np.testing.assert_allclose(z[5:], z[:5], rtol=1e-12)
    with pytest.raises(ValueError, match="median absolute deviation"):
        eda.robust_z(np.ones(5), np.zeros(5, int))


def planted_outlier_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """Three classes in a 6-D signal subspace of 30-D space, one planted outlier in class 0."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), 200)
    x = rng.normal(scale=0.05, size=(600, 30))  # small noise everywhere
    x[:, :6] += rng.normal(size=(600, 6))  # within-class variation in the signal subspace
    x[:, :2] += 8 * np.eye(3)[labels][:, :2]  # class means 8 apart
    outlier = 17
    x[outlier, :6] += 6  # far from its centroid inside the subspace
    x[outlier, 20:] += 1.0  # and far outside it
    return x, labels, outlier


def test_planted_outlier_ranks_first_for_both_methods():
    x, labels, outlier = planted_outlier_data()
    scores = eda.outlier_scores(eda.fit_pca(x, 6, scale=1.0), labels)
    assert scores["centroid z"].idxmax() == outlier
    assert scores["reconstruction z"].idxmax() == outlier
    counts = eda.outlier_counts(scores, threshold=10)
    assert counts.loc[CLASS_NAMES[0], "both"] == 1
    assert counts.loc["total", "both"] == 1


def test_outlier_agreement_identical_and_opposite_scores():
    z = np.linspace(0, 10, 200)
    same = eda.outlier_agreement(pd.DataFrame({"centroid z": z, "reconstruction z": z}), 5)
    assert same["spearman"] == pytest.approx(1.0)
    assert same["jaccard"] == 1.0
    assert same["top_overlap"] == 1.0
    flipped = pd.DataFrame({"centroid z": z, "reconstruction z": z[::-1]})
    opposite = eda.outlier_agreement(flipped, 5)
    assert opposite["spearman"] == pytest.approx(-1.0)
    assert opposite["jaccard"] == 0.0


def test_top_outliers_per_class():
    scores = pd.DataFrame(
        {"label": [0, 0, 0, 1, 1], "centroid z": [1, 5, 3, 2, 9], "reconstruction z": 0.0}
    )
    top = eda.top_outliers(scores, per_class=2)
    assert top.index.tolist() == [1, 2, 4, 3]


def test_neighbour_disagreements_find_a_planted_wrong_label():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1], 150)
    x = rng.normal(size=(300, 10))
    x[labels == 1, 0] += 20  # two well separated classes
    labels[5] = 1  # an image of class 0 labelled 1
    pca = eda.fit_pca(x, 5, scale=1.0)
    scores = eda.outlier_scores(pca, labels)
    found = eda.neighbour_disagreements(pca.scores, labels, scores, threshold=3.5, k=10, vote=0.7)
    assert found.index.tolist() == [5]
    assert found.loc[5, "neighbours' label"] == 0
    assert found.loc[5, "vote"] == 1.0


def test_flagged_outliers_either_and_both():
    scores = pd.DataFrame({"centroid z": [0, 5, 5, 1], "reconstruction z": [4, 5, 0, 1]})
    flagged = eda.flagged_outliers(scores, 3.5)
    assert flagged["either"].tolist() == [0, 1, 2] and flagged["both"].tolist() == [1]


def test_pixel_range_check_counts_blank_flat_and_out_of_range():
    images = np.zeros((4, 2, 2), dtype=np.int16)
    images[1] = 7  # one flat grey level
    images[2, 0, 0] = 300  # out of range
    images[3, 0, 0] = 255  # a normal image
    assert eda.pixel_range_check(images) == {"out_of_range": 1, "blank": 1, "flat": 1}
    assert eda.pixel_range_check(np.full((3, 2, 2), 9, np.uint8) + np.eye(2, dtype=np.uint8)) == {
        "out_of_range": 0,
        "blank": 0,
        "flat": 0,
    }


# --- clustering -----------------------------------------------------------------------


def gaussian_blobs(k: int = 4, per_blob: int = 100, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(k), per_blob)
    centres = 20 * rng.normal(size=(k, 5))
    return centres[labels] + rng.normal(size=(k * per_blob, 5)), labels


def test_separable_blobs_cluster_perfectly():
    x, labels = gaussian_blobs()
    clusters = eda.kmeans_labels(x, 4, seed=0, n_init=4)
    scores = eda.cluster_scores(clusters, labels)
    assert scores["nmi"] > 0.99
    assert scores["ari"] > 0.99
    assert scores["purity"] > 0.99


def test_cluster_scores_near_zero_for_unrelated_labels():
    x, labels = gaussian_blobs()
    clusters = eda.kmeans_labels(x, 4, seed=0, n_init=4)
    shuffled = np.random.default_rng(1).permutation(labels)
    scores = eda.cluster_scores(clusters, shuffled)
    assert scores["nmi"] < 0.05
    assert scores["purity"] < 0.4


def test_contingency_orders_clusters_by_majority_class():
    clusters = np.array([5, 5, 5, 2, 2, 9])
    labels = np.array([3, 3, 1, 0, 0, 3])
    table = eda.contingency(clusters, labels)
    assert table.index.tolist() == ["0 (T-shirt/top)", "1 (Dress)", "2 (Dress)"]
    assert table.loc["1 (Dress)", "Dress"] == 2
    assert table.to_numpy().sum() == 6


def test_merged_classes_reads_shared_and_split_clusters():
    table = pd.DataFrame(
        [[90, 50, 0], [60, 50, 0], [0, 0, 60], [0, 0, 40]],
        columns=["a", "b", "c"],
    )
    found = eda.merged_classes(table, share=0.3)
    assert found["merged"] == [["a", "b"]]  # both clusters hold a and b; listed once
    assert found["split"] == ["a", "b", "c"]
    assert found["absorbed"] == ["b"]  # no cluster has b as its majority
    assert eda.merged_classes(table, share=0.55)["merged"] == []


def test_sample_indices_distinct_sorted_and_seeded():
    idx = eda.sample_indices(1000, 100, seed=3)
    assert len(np.unique(idx)) == 100
    assert np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(idx, eda.sample_indices(1000, 100, seed=3))
    assert not np.array_equal(idx, eda.sample_indices(1000, 100, seed=4))
    np.testing.assert_array_equal(eda.sample_indices(5, 10, seed=0), np.arange(5))


def test_recovered_classes_need_a_pure_majority_cluster():
    table = pd.DataFrame(
        [[90, 0, 10], [10, 45, 50], [0, 55, 40]],
        columns=["a", "b", "c"],
    )
    # a: 90% in cluster 0, which is 90% a. b: 55% in cluster 2, which is 58% b.
    # c: at most 50% in one cluster, and that cluster is only 48% c.
    assert eda.recovered_classes(table) == ["a", "b"]
