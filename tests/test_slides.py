"""fmnist_lib.slides and the deck in a real browser: offline, every slide drawn and readable."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from PIL import Image

from fmnist_lib import config, pipeline, slides
from fmnist_lib.slides import CHROMIUM, CHROMIUM_ARGS

ARTIFACTS = config.PROJ_ROOT / "test-artifacts"
MIN_TEXT_PX = 18.6  # smallest text a slide may show, in screen px at 1280x720 (14 pt = 18.67 px)
# Every visible element of the current slide with its own text, and that text's size on screen:
# the computed font size times the scale reveal.js applies to the whole slide.
TEXT_SIZES_JS = """() => {
  const slide = Reveal.getCurrentSlide(), scale = Reveal.getScale(), found = [];
  for (const el of [slide, ...slide.querySelectorAll('*')]) {
    if (el.closest('aside.notes') || el.closest('script, style')) continue;
    const own = [...el.childNodes].filter(n => n.nodeType === Node.TEXT_NODE)
      .map(n => n.textContent).join(' ').replace(/\\s+/g, ' ').trim();
    if (!own || el.getClientRects().length === 0) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' && !el.closest('.fragment')) continue;
    found.push({tag: el.tagName.toLowerCase(), text: own.slice(0, 60),
                px: Math.round(parseFloat(style.fontSize) * scale * 10) / 10});
  }
  return found;
}"""
# How far the current slide's content reaches below the slide's bottom edge, in CSS px
# (negative: it ends above it). The PDF cuts what reaches below.
CUT_JS = """() => {
  const slide = Reveal.getCurrentSlide(), top = slide.getBoundingClientRect().top;
  let bottom = top;
  for (const el of slide.querySelectorAll('*')) {
    if (el.closest('aside.notes') || el.getClientRects().length === 0) continue;
    bottom = Math.max(bottom, el.getBoundingClientRect().bottom);
  }
  return Math.round((bottom - top) / Reveal.getScale() - Reveal.getConfig().height);
}"""
# The speaker notes of every slide (reveal's own reading of <aside class="notes">), as text.
NOTES_TEXT_JS = """() => Reveal.getSlides().map(s => {
  const div = document.createElement('div');
  div.innerHTML = Reveal.getSlideNotes(s) || '';
  return div.textContent.replace(/\\s+/g, ' ').trim();
})"""


def render_deck(deck: Path, profile: Path, shots: Path) -> dict:
    """Open `deck` from file:// in Chromium at 1280x720; visit, measure, screenshot each slide."""
    from playwright.sync_api import sync_playwright

    shots.mkdir(parents=True, exist_ok=True)
    width, height = slides.SLIDE_SIZE
    seen: dict = {"requests": [], "failed": [], "errors": [], "shots": [], "headings": {}}
    seen.update(text={}, visible={}, below={}, images={})
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": width, "height": height},
        )
        page = context.new_page()
        page.on("request", lambda r: seen["requests"].append(r.url))
        page.on("requestfailed", lambda r: seen["failed"].append(f"{r.url} {r.failure}"))
        page.on("pageerror", lambda e: seen["errors"].append(str(e)))
        page.goto(deck.as_uri(), wait_until="load")
        page.wait_for_function("window.Reveal && Reveal.isReady()", timeout=30_000)
        seen["total"] = page.evaluate("Reveal.getTotalSlides()")
        seen["scale"] = page.evaluate("Reveal.getScale()")
        indices = page.evaluate("Reveal.getSlides().map(s => Reveal.getIndices(s))")
        seen["notes"] = page.evaluate(NOTES_TEXT_JS)
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
            seen["text"][path.name] = page.evaluate(TEXT_SIZES_JS)
            seen["visible"][path.name] = page.evaluate("Reveal.getCurrentSlide().innerText")
            seen["below"][path.name] = page.evaluate(CUT_JS)
            seen["images"][path.name] = page.evaluate(
                "[...Reveal.getCurrentSlide().querySelectorAll('img')]"
                ".filter(i => i.getClientRects().length).length"
            )
            page.screenshot(path=str(path))
            seen["shots"].append(path)
        context.close()
    return seen


def small_text(seen: dict, min_px: float = MIN_TEXT_PX) -> list[str]:
    """Each text element rendered below `min_px`, as 'slide: <tag> size px "text"'."""
    return [
        f"{shot}: <{el['tag']}> {el['px']} px {el['text']!r}"
        for shot, found in seen["text"].items()
        for el in found
        if el["px"] < min_px
    ]


def is_blank(png: Path) -> bool:
    """True when a screenshot is (nearly) one flat colour."""
    grey = np.asarray(Image.open(png).convert("L"), dtype=float)
    return grey.std() < 3 or (np.abs(grey - np.median(grey)) > 30).mean() < 0.002


def pdf_pages(pdf: Path) -> list[tuple[str, int]]:
    """The text of each page of a PDF, and how many images it draws."""
    from pypdf import PdfReader

    return [(page.extract_text() or "", len(page.images)) for page in PdfReader(pdf).pages]


if __name__ == "__main__":  # python tests/test_slides.py DECK OUT: screenshots and text sizes
    result = render_deck(
        Path(sys.argv[1]).resolve(), Path(sys.argv[2]) / "profile", Path(sys.argv[2])
    )
    sizes = sorted({el["px"] for found in result["text"].values() for el in found})
    keys = ("total", "scale", "headings", "notes", "below")
    print(json.dumps({k: result[k] for k in keys}, indent=1))
    print("text sizes (px):", sizes)
    print("\n".join(small_text(result)) or f"no text below {MIN_TEXT_PX} px")
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
    assert "RevealNotes" in res["notes_js"] and "</script" not in res["notes_js"]
    assert "://" not in res["notes_js"]  # `:/\\/` in its strings: no URL in the page
    assert (res["width"], res["height"]) == tuple(map(str, slides.SLIDE_SIZE))
    assert not any(slides.remote_references(v) for v in res.values())


def test_export_pdf_without_a_browser_says_why_in_one_line(tmp_path, monkeypatch, caplog):
    deck = tmp_path / slides.DECK_FILE
    deck.write_text("<html></html>")
    monkeypatch.setattr(slides, "CHROMIUM", str(tmp_path / "no-chromium"))
    caplog.set_level(logging.INFO, logger="fmnist_lib")
    assert slides.export_pdf(deck) is None
    (record,) = caplog.records  # one warning, and no "slides pdf ->" line
    assert record.levelno == logging.WARNING
    assert f"slides.pdf skipped: {slides.browser_missing()}" in record.getMessage()
    assert "\n" not in record.getMessage()
    assert not (tmp_path / slides.PDF_FILE).exists()
    with pytest.raises(slides.BrowserMissing):
        slides.print_pdf(deck)
    monkeypatch.setitem(sys.modules, "playwright.sync_api", None)  # import fails
    assert slides.browser_missing().startswith("Playwright is not installed")


def test_figure_html_embeds_or_says_missing(tmp_path):
    (tmp_path / "figures").mkdir()
    Image.new("RGB", (4, 4), "red").save(tmp_path / "figures" / "f.png")
    assert 'src="data:image/png;base64,' in slides.figure_html(tmp_path, "f", 300)
    assert "is not in this run" in slides.figure_html(tmp_path, "missing")


# --- the deck in a browser -------------------------------------------------------------


@pytest.fixture(scope="module")
def deck(tmp_path_factory) -> Path:
    """The deck of the committed 05_presentation, whose outputs are the reference run's (nbval
    checks them in tests/test_reference.py), exported and printed by the pipeline's own step."""
    run_dir = tmp_path_factory.mktemp("runs") / "reference"
    run_dir.mkdir()
    shutil.copy(config.NOTEBOOKS_DIR / "05_presentation.ipynb", run_dir)
    notebook = nbformat.read(run_dir / "05_presentation.ipynb", as_version=4)
    if not any(c.get("outputs") for c in notebook.cells if c.cell_type == "code"):
        pytest.fail("notebooks/05_presentation.ipynb has no outputs: run `make reference`")
    assert pipeline.export_slides(run_dir) == slides.DECK_FILE
    return run_dir / slides.DECK_FILE


def test_deck_has_no_network_reference(deck):
    page = deck.read_text()
    assert slides.remote_references(page) == []
    assert "http://" not in page and "https://" not in page
    assert page.count("<section") >= 15


def _chromium_or_skip() -> None:
    missing = slides.browser_missing()
    if missing:
        pytest.skip(f"the browser tests need Playwright and chromium: {missing}")


@pytest.fixture(scope="module")
def rendered(deck, tmp_path_factory) -> dict:
    """The deck in Chromium: every slide visited, measured and screenshotted (kept in
    test-artifacts/slides/ for a look)."""
    _chromium_or_skip()
    work = tmp_path_factory.mktemp("chromium")
    seen = render_deck(deck, work / "profile", work / "shots")
    keep = ARTIFACTS / "slides"
    keep.mkdir(parents=True, exist_ok=True)
    for old in keep.glob("slide_*.png"):
        old.unlink()
    for shot in seen["shots"]:
        shutil.copy(shot, keep / shot.name)
    return seen


@pytest.mark.slow
def test_deck_renders_offline_in_chromium(rendered):
    nb = nbformat.read(config.NOTEBOOKS_DIR / "05_presentation.ipynb", as_version=4)
    assert rendered["total"] == slides.count_slides(nb) == len(rendered["shots"])
    assert rendered["failed"] == [] and rendered["errors"] == []
    requests = rendered["requests"]
    assert all(u.startswith(("file://", "data:")) for u in requests), requests
    assert "Source Sans Pro" in rendered["fonts"]  # the theme's font came from the file itself
    assert rendered["scale"] == 1  # 1280x720 window, 1280x720 slides: CSS px are screen px


@pytest.mark.slow
def test_no_slide_is_blank(rendered):
    assert [p.name for p in rendered["shots"] if is_blank(p)] == []


@pytest.mark.slow
def test_no_text_on_a_slide_is_below_14_px(rendered):
    small = small_text(rendered)
    assert not small, f"{len(small)} text elements below {MIN_TEXT_PX} px:\n" + "\n".join(small)


@pytest.mark.slow
def test_every_slide_has_speaker_notes(rendered):
    slides_and_notes = zip(rendered["headings"].items(), rendered["notes"], strict=True)
    missing = [f"{shot} {head!r}" for (shot, head), notes in slides_and_notes if not notes]
    assert not missing, "slides without speaker notes:\n" + "\n".join(missing)


@pytest.mark.slow
def test_pdf_has_one_page_per_slide(deck, rendered):
    pdf = deck.with_name(slides.PDF_FILE)
    assert pdf.is_file(), f"the pipeline printed no {pdf.name} beside {deck.name}"
    pages = pdf_pages(pdf)
    assert len(pages) == rendered["total"]
    # Every slide's images are printed on its page (Chromium drops one it pushes off a page).
    shown = list(rendered["images"].values())
    assert [min(n, 1) for _, n in pages] == [min(n, 1) for n in shown], (pages, shown)


@pytest.mark.slow
def test_no_slide_reaches_below_its_page(rendered):
    # The deck prints one page per slide (pdfMaxPagesPerSlide: 1), so what reaches below a
    # 1280x720 slide is cut from the PDF, and off the screen.
    cut = {shot: px for shot, px in rendered["below"].items() if px > 0}
    assert not cut, f"content below the slide's bottom edge, in px: {cut}"


# --- speaker notes and the PDF, on a deck made for them ------------------------------------

NOTES = ("zebra one: greet the room", "zebra two: the one line", "zebra three: below")


TITLE_SLIDE = """<div class="deck-title">

# A deck with notes

<p class="deck-subtitle">The title style of DECK_CSS</p>
<img class="deck-strip" alt="samples" src="data:image/png;base64,{strip}">
<p class="deck-greeting">Good morning.</p>
</div>"""


def sample_strip() -> str:
    """A strip of ten 28x28 noise 'images' as base64 PNG, for the title slide."""
    import base64
    import io

    pixels = np.random.default_rng(0).integers(0, 256, (28, 280), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def notes_notebook() -> nbformat.NotebookNode:
    """Three slides (a vertical one, a fragment); notes from a Markdown cell and from code
    cells whose output is Markdown (as `Markdown(talk.note(...))` in 05), as a kernel stores it."""
    from IPython.core.formatters import format_display_data
    from IPython.display import Markdown

    v4 = nbformat.v4

    def shown(obj) -> list:
        data, metadata = format_display_data(obj)
        return [v4.new_output("display_data", data=data, metadata=metadata)]

    def code(outputs: list, slide_type: str) -> nbformat.NotebookNode:
        return v4.new_code_cell(
            "...", outputs=outputs, metadata={"slideshow": {"slide_type": slide_type}}
        )

    def md(source: str, slide_type: str) -> nbformat.NotebookNode:
        return v4.new_markdown_cell(source, metadata={"slideshow": {"slide_type": slide_type}})

    visible = {"text/markdown": "Visible text, 24 px.", "text/plain": "..."}
    return v4.new_notebook(
        cells=[
            md(TITLE_SLIDE.format(strip=sample_strip()), "slide"),
            md(NOTES[0], "notes"),
            md("## The second slide", "slide"),
            code([v4.new_output("display_data", data=visible)], "-"),
            code(shown(Markdown(f"{NOTES[1]}\n\n**Say:** it.")), "notes"),
            md("## Below the second", "subslide"),
            md("- shown one step later", "fragment"),
            code(shown(Markdown(NOTES[2])), "notes"),
        ]
    )


def open_speaker_view(deck: Path, profile: Path, slide: tuple[int, int]) -> dict:
    """Go to `slide` (h, v), press S and read the speaker view that opens."""
    from playwright.sync_api import sync_playwright

    seen: dict = {"requests": [], "errors": []}
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        context.on("request", lambda r: seen["requests"].append(r.url))
        page = context.new_page()
        page.on("pageerror", lambda e: seen["errors"].append(str(e)))
        page.goto(deck.as_uri(), wait_until="load")
        page.wait_for_function("window.Reveal && Reveal.isReady()", timeout=30_000)
        page.evaluate(f"Reveal.slide({slide[0]}, {slide[1]})")
        with context.expect_page() as popup:
            page.keyboard.press("s")
        view = popup.value
        view.on("pageerror", lambda e: seen["errors"].append(str(e)))
        view.wait_for_function(
            "(document.querySelector('.speaker-controls-notes .value') || {}).textContent",
            timeout=30_000,
        )
        seen["notes"] = view.evaluate(
            "document.querySelector('.speaker-controls-notes .value').textContent"
        )
        # The current-slide preview is the deck itself, loaded from file:// in an iframe.
        preview = view.frame_locator("#current-slide iframe").locator(".reveal.ready")
        preview.wait_for(state="attached", timeout=30_000)
        seen["frames"] = [f.url for f in view.frames]
        context.close()
    return seen


@pytest.fixture(scope="module")
def notes_deck(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("notes")
    nbformat.write(notes_notebook(), folder / "notes.ipynb")
    return slides.export_deck(folder / "notes.ipynb", folder / slides.DECK_FILE)


def test_notes_cells_become_reveal_notes(notes_deck):
    page = notes_deck.read_text()
    assert page.count('<aside class="notes">') == 3
    assert all(note in page for note in NOTES)
    assert "plugins: [RevealNotes]" in page and "showNotes: false" in page


def test_the_deck_is_titled_by_its_first_heading_on_a_slide(notes_deck):
    assert "<title>A deck with notes</title>" in notes_deck.read_text()


def test_deck_title_skips_what_is_not_shown_and_reads_markdown_outputs():
    v4 = nbformat.v4
    skipped = v4.new_markdown_cell(
        "# 05 · Presentation", metadata={"slideshow": {"slide_type": "skip"}}
    )
    note = v4.new_markdown_cell("# Say this", metadata={"slideshow": {"slide_type": "notes"}})
    strip = v4.new_code_cell(
        "...", outputs=[v4.new_output("display_data", data={"text/html": "<img>"})]
    )
    title = v4.new_code_cell(
        "...",
        outputs=[v4.new_output("execute_result", data={"text/markdown": "Hello\n\n# Shirts ##\n"})],
    )
    nb = v4.new_notebook(cells=[skipped, note, strip, title])
    assert slides.deck_title(nb, "fallback") == "Shirts"
    nb.cells = [skipped, note, strip, v4.new_markdown_cell("## Only a second level")]
    assert slides.deck_title(nb, "fmnist: run-1") == "fmnist: run-1"


@pytest.mark.slow
def test_notes_are_hidden_on_the_slide_and_shown_in_the_speaker_view(notes_deck, tmp_path):
    _chromium_or_skip()
    seen = render_deck(notes_deck, tmp_path / "profile", tmp_path / "shots")
    assert seen["total"] == 3 and seen["errors"] == []
    assert seen["notes"] == [NOTES[0], NOTES[1] + " Say: it.", NOTES[2]]
    assert small_text(seen) == [] and not any(is_blank(p) for p in seen["shots"])
    assert not any("zebra" in text for text in seen["visible"].values()), seen["visible"]
    assert "Visible text" in seen["visible"]["slide_01.png"]
    view = open_speaker_view(notes_deck, tmp_path / "profile-speaker", (1, 0))
    assert view["notes"].strip().startswith(NOTES[1]) and view["errors"] == []
    assert any("receiver" in url for url in view["frames"]), view["frames"]
    local = ("file://", "data:", "about:")
    assert all(u.startswith(local) for u in view["requests"]), view["requests"]


@pytest.mark.slow
def test_pdf_prints_one_page_per_slide_without_notes(notes_deck):
    _chromium_or_skip()
    from pypdf import PdfReader

    pdf = slides.print_pdf(notes_deck)
    assert PdfReader(pdf).metadata.title == "A deck with notes"  # not "slides slides"
    pages = pdf_pages(pdf)
    assert len(pages) == 3  # the fragment is not a page of its own
    (_, strip), (second, _), (third, _) = pages
    assert strip == 1 and "Visible text" in second and "shown one step later" in third
    assert not any("zebra" in text for text, _ in pages), pages
