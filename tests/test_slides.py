"""fmnist_lib.slides and the deck in a real browser: offline, every slide drawn, none blank."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from PIL import Image

from fmnist_lib import config, pipeline, slides

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Chromium with everything that talks to the network off, in a fresh profile.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--metrics-recording-only",
    "--no-pings",
]
ARTIFACTS = config.PROJ_ROOT / "test-artifacts"


def render_deck(deck: Path, profile: Path, shots: Path) -> dict:
    """Open `deck` from file:// in Chromium, visit every slide and screenshot it."""
    from playwright.sync_api import sync_playwright

    shots.mkdir(parents=True, exist_ok=True)
    seen: dict = {"requests": [], "failed": [], "errors": [], "shots": [], "headings": {}}
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1280, "height": 800},
        )
        page = context.new_page()
        page.on("request", lambda r: seen["requests"].append(r.url))
        page.on("requestfailed", lambda r: seen["failed"].append(f"{r.url} {r.failure}"))
        page.on("pageerror", lambda e: seen["errors"].append(str(e)))
        page.goto(deck.as_uri(), wait_until="load")
        page.wait_for_function("window.Reveal && Reveal.isReady()", timeout=30_000)
        seen["total"] = page.evaluate("Reveal.getTotalSlides()")
        indices = page.evaluate("Reveal.getSlides().map(s => Reveal.getIndices(s))")
        seen["fonts"] = page.evaluate(
            "document.fonts.ready.then(() => [...document.fonts].filter("
            "f => f.status === 'loaded').map(f => f.family))"
        )
        # Screenshots of the content only: no arrows, progress bar or slide number.
        page.evaluate("Reveal.configure({controls: false, progress: false, slideNumber: false})")
        for k, ix in enumerate(indices):
            page.evaluate(f"Reveal.slide({ix['h']}, {ix.get('v') or 0})")
            page.wait_for_timeout(150)
            path = shots / f"slide_{k:02d}.png"
            seen["headings"][path.name] = page.evaluate(
                "(Reveal.getCurrentSlide().querySelector('h1, h2') || {}).textContent || ''"
            )
            page.screenshot(path=str(path))
            seen["shots"].append(path)
        context.close()
    return seen


def is_blank(png: Path) -> bool:
    """True when a screenshot is (nearly) one flat colour."""
    grey = np.asarray(Image.open(png).convert("L"), dtype=float)
    return grey.std() < 3 or (np.abs(grey - np.median(grey)) > 30).mean() < 0.002


if __name__ == "__main__":  # python tests/test_slides.py DECK OUT: screenshots for a look
    result = render_deck(
        Path(sys.argv[1]).resolve(), Path(sys.argv[2]) / "profile", Path(sys.argv[2])
    )
    print(json.dumps({k: v for k, v in result.items() if k != "shots"}, indent=1, default=str))
    print([(p.name, is_blank(p)) for p in result["shots"]])


# --- unit tests -------------------------------------------------------------------------


def test_remote_references_finds_every_kind_of_fetch():
    page = (
        '<script src="https://cdn.example/x.js"></script><link href="//cdn.example/a.css">'
        "<style>@import 'https://fonts.example/f.css'; a { background: url( http://x/y.png) }"
        '</style><img src="data:image/png;base64,AAAA"><a href="#/2">next</a>'
    )
    found = slides.remote_references(page)
    assert len(found) == 4
    assert slides.remote_references('<img src="data:image/png;base64,AA"> /* see x.org */') == []


def test_offline_resources_inline_the_fonts():
    res = slides.offline_resources()
    assert res["theme_css"].count("data:font/woff;base64,") == 4
    assert "@import" not in res["theme_css"] and ".eot" not in res["theme_css"]
    assert "Reveal" in res["reveal_js"] and "</script" not in res["reveal_js"]
    assert not any(slides.remote_references(v) for v in res.values())


def test_project_map_is_read_from_the_code():
    project = slides.project_map()
    assert project["notebooks"] == list(pipeline.NOTEBOOKS)
    assert {"pipeline", "report", "slides", "plots"} <= set(project["modules"])
    assert "report" in project["uses"]["04_results"]
    assert "slides" in project["uses"]["05_presentation"]
    assert {"pipeline", "report", "slides"} <= set(project["tests"]["test_slides"])


def test_imported_modules():
    src = "import os\nfrom fmnist_lib import data, plots\nfrom fmnist_lib.eda import x\n"
    assert slides.imported_modules(src) == ["data", "eda", "plots"]


def test_figure_html_embeds_or_says_missing(tmp_path):
    (tmp_path / "figures").mkdir()
    Image.new("RGB", (4, 4), "red").save(tmp_path / "figures" / "f.png")
    assert 'src="data:image/png;base64,' in slides.figure_html(tmp_path, "f", 300)
    assert "is not in this run" in slides.figure_html(tmp_path, "missing")


# --- the deck in a browser -------------------------------------------------------------


def synthetic_run(run_dir: Path) -> Path:
    """A run folder with only what 05_presentation reads: one model (mlp), two figures."""
    import matplotlib

    matplotlib.use("Agg")
    from fmnist_lib import plots, records, report
    from fmnist_lib.data import CLASS_NAMES

    (run_dir / "figures").mkdir(parents=True)
    for fig_id in ("eda_class_distribution", "results_training_curves"):
        fig = plots.training_curves({"mlp": [{"accuracy": 0.8, "loss": 0.5}] * 2})
        plots.save_fig(fig, fig_id, run_dir)
    per_class = dict.fromkeys(CLASS_NAMES, 6000)
    training = {
        "mlp": {
            "accuracy": 0.875,
            "macro_f1": 0.874,
            "params": 535818,
            "epochs": 3,
            "train_seconds": 30.0,
            "n_train": 54000,
            "image_size": 28,
            "n": 10000,
            "weights_used": None,
            "fine_tune": None,
        },
    }
    table = report.comparison_table(training)
    metrics = {
        "eda": {
            "n_train": 60000,
            "n_test": 10000,
            "balanced": True,
            "train_per_class": per_class,
            "pixel_mean": 72.9,
            "pixel_std": 90.0,
            "zero_share": 0.5,
            "exact_duplicates": {"within_train": 1, "within_test": 0, "train_test": 2},
            "near_duplicate_distance": 0.3,
            "near_duplicates": {"a": 3},
            "test_images_with_train_near_duplicate": 4,
            "near_duplicate_label_disagreements": 1,
            "outlier_z": 3.5,
            "outliers": {"centroid": {"total": 5}},
            "mislabel_candidates": 6,
        },
        "preprocessing": {
            "n_train": 54000,
            "n_val": 6000,
            "n_test": 10000,
            "val_fraction": 0.1,
            "seed": 42,
        },
        "training": training,
        "results": {
            "best_model": "mlp",
            "table": table.reset_index().to_dict(orient="records"),
            "anchors": report.anchors_table({"mlp": 0.875}).reset_index().to_dict("records"),
            "models": {
                "mlp": {
                    "ece": 0.02,
                    "confused_pairs": [{"true": "Shirt", "predicted": "T-shirt/top", "count": 9}],
                }
            },
            "clustering": {
                "model": "mlp",
                "n": 2000,
                "learned": {"nmi": 0.7},
                "raw_pixels_same_sample": {"nmi": 0.5},
                "raw_pixels_eda": 0.51,
            },
            "architecture": {
                "mlp": [
                    {
                        "layer": "dense_1",
                        "type": "Dense",
                        "output shape": "(batch, 512)",
                        "parameters": 401920,
                        "trainable": True,
                    }
                ]
            },
        },
    }
    records.write_json(run_dir / "metrics.json", metrics)
    records.write_json(
        run_dir / "run.json",
        {"run_id": run_dir.name, "profile": "synthetic", "started": "2026-01-01T00:00:00"},
    )
    return run_dir


@pytest.fixture(scope="module")
def deck(tmp_path_factory) -> Path:
    run_dir = synthetic_run(tmp_path_factory.mktemp("runs") / "synthetic")
    pipeline.execute(pipeline.Step("05_presentation", "05_presentation"), run_dir, False)
    assert pipeline.export_slides(run_dir) == slides.DECK_FILE
    return run_dir / slides.DECK_FILE


def test_deck_has_no_network_reference(deck):
    page = deck.read_text()
    assert slides.remote_references(page) == []
    assert "http://" not in page and "https://" not in page
    assert page.count("<section") >= 15


def _chromium_or_skip() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed and could not be (run `make browser` as root)")
    pytest.importorskip("playwright", reason="the test extra (playwright) is not installed")


@pytest.mark.slow
def test_deck_renders_offline_in_chromium(deck, tmp_path):
    _chromium_or_skip()
    shots = tmp_path / "shots"
    seen = render_deck(deck, tmp_path / "profile", shots)
    nb = nbformat.read(config.NOTEBOOKS_DIR / "05_presentation.ipynb", as_version=4)
    assert seen["total"] == slides.count_slides(nb) == len(seen["shots"])
    assert seen["failed"] == [] and seen["errors"] == []
    assert all(u.startswith(("file://", "data:")) for u in seen["requests"]), seen["requests"]
    assert "Source Sans Pro" in seen["fonts"]  # the theme's font came from the file itself
    blank = [p.name for p in seen["shots"] if is_blank(p)]
    assert blank == []
    keep = ARTIFACTS / "slides"
    keep.mkdir(parents=True, exist_ok=True)
    for name, heading in seen["headings"].items():
        if heading.startswith(("Fashion-MNIST", "Training curves", "Comparison", "Predictions")):
            shutil.copy(shots / name, keep / name)
    assert (keep / "slide_00.png").exists()
