"""Why 01_eda and 04_results run slower on the accelerator machine than on the 2-core CPU.

Times, in this one process, the heavy CPU steps of 01_eda on the full data: PCA, k-means
(scikit-learn, BLAS and OpenMP threads) and UMAP (numba), UMAP twice (the first call pays
numba's just-in-time compilation, which umap-learn caches next to its installed files; a
fresh install has no cache), and k-means again under one thread. Prints one JSON line.

    python benchmarks/device/cpu_steps.py
"""

from __future__ import annotations

import json
import os
import time

from threadpoolctl import threadpool_info, threadpool_limits

from fmnist_lib import data, eda


def timed(fn, *args, **kwargs) -> tuple[object, float]:
    """`fn(*args, **kwargs)` and its wall seconds."""
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, round(time.perf_counter() - t, 2)


def main() -> None:
    out: dict[str, object] = {"cpus": os.cpu_count()}
    out["pools"] = [
        {k: p.get(k) for k in ("internal_api", "num_threads")} for p in threadpool_info()
    ]
    ds = data.load_fashion_mnist(allow_download=False)
    everything = eda.combine(ds)
    pca, out["pca_s"] = timed(eda.fit_pca, everything.flat, 50)
    _, out["kmeans_s"] = timed(eda.kmeans_labels, pca.scores, 10, seed=42, n_init=4)
    with threadpool_limits(1):
        _, out["kmeans_1thread_s"] = timed(eda.kmeans_labels, pca.scores, 10, seed=42, n_init=4)
    with threadpool_limits(2):
        _, out["kmeans_2threads_s"] = timed(eda.kmeans_labels, pca.scores, 10, seed=42, n_init=4)
    _, out["import_umap_s"] = timed(eda._import_umap)
    sample = eda.sample_indices(len(everything.labels), 10000, 42)
    _, out["umap_first_s"] = timed(eda.umap_embedding, pca.scores[sample], 42)
    _, out["umap_second_s"] = timed(eda.umap_embedding, pca.scores[sample], 42)
    print("CPU_STEPS " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
