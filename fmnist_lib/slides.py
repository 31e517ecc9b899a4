"""The slide deck: figures for `05_presentation` and its offline reveal.js export.

`export_deck` turns the executed presentation notebook into `slides.html` with nbconvert's
slides exporter and a template of ours that inlines reveal.js (vendored from npm, see
`static/reveal.js/README.md`), so the deck opens from `file://` with no network. Cells whose
slide type is "notes" become speaker notes (press S in the deck for the speaker view), and
`print_pdf` prints the deck as `slides.pdf` in headless Chromium, one 1280×720 page a slide.
"""

from __future__ import annotations

import base64
import html
import logging
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import nbformat

STATIC = Path(__file__).resolve().parent / "static"
REVEAL_DIR = STATIC / "reveal.js"
TEMPLATE_DIR = STATIC / "offline_reveal"
NOTES_JS = REVEAL_DIR / "plugin" / "notes" / "notes.js"
DECK_FILE = "slides.html"
PDF_FILE = "slides.pdf"
SLIDE_SIZE = (1280, 720)  # the deck's width and height in CSS px, and the PDF's page size
PRESENTATION = "05_presentation"
SLIDE_STARTS = ("slide", "subslide")

log = logging.getLogger(__name__)

# Anything the browser would fetch: src/href attributes, CSS url(...) and @import.
_REMOTE = re.compile(
    r"""(?:\b(?:src|href|data)\s*=\s*["']?\s*|url\(\s*["']?|@import\s+["'])(?:https?:)?//""",
    re.IGNORECASE,
)
DECK_CSS = """
/* The deck's typography, in CSS px of the 1280x720 slide (= screen px at scale 1): nothing
   below 19 px (14 pt is 18.67 px). One font (the theme's Source Sans Pro, inlined), one
   restrained accent. */
:root {
    --deck-accent: #1d5f8a;
    --deck-ink: #1f2328;
    --deck-muted: #57606a;
    --deck-font: "Source Sans Pro", Helvetica, Arial, sans-serif;
    --deck-padding: 36px 64px 28px;
    --r-main-font: var(--deck-font);
    --r-heading-font: var(--deck-font);
    --r-main-color: var(--deck-ink);
    --r-heading-color: var(--deck-ink);
    --r-link-color: var(--deck-accent);
    --jp-content-font-family: var(--deck-font);
    --jp-ui-font-family: var(--deck-font);
    --jp-content-font-color1: var(--deck-ink);
    --jp-content-font-size1: 24px;
    --jp-ui-font-size1: 19px;
    --jp-code-font-size: 19px;
}
.reveal .slides { text-align: left; }
.reveal .slides > section:not(.stack), .reveal .slides > section > section {
    box-sizing: border-box;
    min-height: 100%;
    padding: var(--deck-padding);
    font-size: 24px;
    line-height: 1.35;
}
.reveal .jp-Cell, .reveal .jp-Cell-inputWrapper, .reveal .jp-Cell-outputWrapper,
.reveal .jp-OutputArea-output, .reveal .jp-RenderedHTMLCommon { padding: 0; margin: 0; }
.reveal .jp-OutputArea-output { overflow: visible; }
.reveal .jp-RenderedHTMLCommon { font-size: 24px; line-height: 1.35; color: var(--deck-ink); }
.reveal .jp-RenderedHTMLCommon p, .reveal .jp-RenderedHTMLCommon ul,
.reveal .jp-RenderedHTMLCommon ol { margin: 0 0 0.5em; }
.reveal .jp-RenderedHTMLCommon li { margin: 0.15em 0; }
.reveal h1, .reveal h2, .reveal h3, .reveal .jp-RenderedHTMLCommon h1,
.reveal .jp-RenderedHTMLCommon h2, .reveal .jp-RenderedHTMLCommon h3 {
    font-family: var(--deck-font);
    text-transform: none;
    letter-spacing: 0;
    line-height: 1.15;
    color: var(--deck-ink);
    margin: 0 0 0.45em;
}
.reveal h1, .reveal .jp-RenderedHTMLCommon h1 { font-size: 52px; font-weight: 600; }
.reveal h2, .reveal .jp-RenderedHTMLCommon h2 {
    font-size: 36px;
    font-weight: 600;
    padding-bottom: 0.2em;
    border-bottom: 3px solid var(--deck-accent);
}
.reveal h3, .reveal .jp-RenderedHTMLCommon h3 { font-size: 28px; font-weight: 600; }
.reveal strong, .reveal b { font-weight: 600; }
.reveal code, .reveal .jp-RenderedHTMLCommon code { font-size: 0.9em; }
.reveal table, .reveal .jp-RenderedHTMLCommon table {
    font-size: 19px;
    margin: 0.3em 0 0.6em;
    border-collapse: collapse;
}
.reveal table td, .reveal table th { padding: 0.2em 0.6em; font-size: 19px; }
.reveal table thead th { border-bottom: 2px solid var(--deck-ink); }
.reveal table tbody th { text-align: left; }
.reveal img.deck-figure { display: block; margin: 0.2em auto; max-width: 100%; }
.reveal .deck-note, .reveal .deck-note code { color: var(--deck-muted); font-size: 19px; }
/* A verdict on a claim of the slide talk: the first line of its slide, coloured by verdict. */
.reveal .verdict {
    font-size: 22px;
    border-left: 6px solid;
    padding: 0.2em 0.6em;
    margin: 0 0 0.5em;
}
.reveal .verdict-confirmed { border-color: #2e7d32; background: #eef7ee; }
.reveal .verdict-partly { border-color: #b26a00; background: #fdf4e7; }
.reveal .verdict-refuted { border-color: #b3261e; background: #fbeeed; }
.reveal table.scorecard td, .reveal table.scorecard th { text-align: left; vertical-align: top; }
.reveal span.verdict-cell { font-weight: 600; }
.reveal .deck-verdict {
    border-left: 6px solid var(--deck-accent);
    padding: 0.3em 0.7em;
    background: #f2f6f9;
    margin: 0.4em 0;
}
/* Title slide: a block that fills the slide, its heading on an accent rule, a strip of
   sample images (pixelated: 28x28 images stay crisp when scaled up) and a greeting. */
.reveal .deck-title {
    display: flex;
    flex-direction: column;
    justify-content: center;
    min-height: 600px;
    gap: 0.4em;
}
.reveal .deck-title h1 {
    font-size: 60px;
    border-left: 10px solid var(--deck-accent);
    padding-left: 0.35em;
    margin: 0;
}
.reveal .deck-title .deck-subtitle { font-size: 30px; color: var(--deck-muted); margin: 0; }
.reveal .deck-title img.deck-strip {
    display: block;
    width: 100%;
    max-height: 180px;
    object-fit: contain;
    object-position: left;
    image-rendering: pixelated;
    margin: 0.5em 0;
}
.reveal .deck-title .deck-greeting { font-size: 26px; margin: 0; }
.reveal .slide-number, .reveal .slide-number-pdf {
    font-family: var(--deck-font);
    font-size: 19px;
    color: var(--deck-muted);
    background: none;
}
/* ?print-pdf: reveal's print CSS zeroes the slides' padding, and breaks the page after the
   last slide too (a blank last page in Chromium). Each page is contained, or Chromium moves
   an image that reaches its bottom edge onto the next page, where the page's clip hides it. */
html.print-pdf .reveal .slides section:not(.stack) { padding: var(--deck-padding) !important; }
html.print-pdf .reveal .slides .pdf-page { contain: strict; }
html.print-pdf .reveal .slides .pdf-page:last-child { page-break-after: auto !important; }
"""


# --- figures and facts for the slides ---------------------------------------------------


def figure_html(run_dir: str | os.PathLike[str], fig_id: str, max_height: int = 560) -> str:
    """The run's `figures/<fig_id>.png` as an embedded image, or a note that it is missing."""
    return _embedded(Path(run_dir) / "figures" / f"{fig_id}.png", f"max-height: {max_height}px")


def _embedded(path: Path, style: str | Callable[[Path], str]) -> str:
    """A PNG as an <img> with its bytes inlined and `style` (or `style(path)`), or a note
    naming the missing figure."""
    if not path.is_file():
        name = html.escape(path.stem)
        return f'<p class="deck-note">Figure <code>{name}</code> is not in this run.</p>'
    css = style(path) if callable(style) else style
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<img class="deck-figure" alt="{html.escape(path.stem)}" '
        f'style="{css}" src="data:image/png;base64,{data}">'
    )


def place_figure(fig, fig_id: str, run_dir: str | os.PathLike[str]) -> str:
    """Save a figure drawn for a slide into the run (`plots.save_fig`), close it, and return it
    as HTML at the size it was drawn (`slide_figure`)."""
    import matplotlib.pyplot as plt

    from fmnist_lib import plots

    plots.save_fig(fig, fig_id, run_dir)
    plt.close(fig)
    return slide_figure(run_dir, fig_id)


def slide_figure(run_dir: str | os.PathLike[str], fig_id: str) -> str:
    """A figure drawn for the slide (`plots.slide_style`), embedded at the size it was drawn:
    its PNG's pixels at `plots.DPI`, shown at `plots.SLIDE_PPI`, so 14 pt stays 14 pt."""
    from PIL import Image

    from fmnist_lib import plots

    def drawn_size(path: Path) -> str:
        with Image.open(path) as png:  # reads the header only
            shown = round(png.width * plots.SLIDE_PPI / plots.DPI)
        return f"width: {shown}px; max-width: none"

    return _embedded(Path(run_dir) / "figures" / f"{fig_id}.png", drawn_size)


def count_slides(notebook: nbformat.NotebookNode) -> int:
    """Slides the deck will have: cells that start a slide or a sub-slide."""
    return sum(
        c.metadata.get("slideshow", {}).get("slide_type") in SLIDE_STARTS for c in notebook.cells
    )


# --- export -------------------------------------------------------------------------------


def _inline_fonts(css: str, folder: Path) -> str:
    """Replace each @font-face source list by its WOFF file as a data URI."""

    def face(match: re.Match) -> str:
        block = match.group(0)
        woff = re.search(r"url\(['\"]?\./([^'\")]+\.woff)['\"]?\)", block)
        if woff is None:
            return ""
        data = base64.b64encode((folder / woff.group(1)).read_bytes()).decode("ascii")
        block = re.sub(r"\s*src:[^;]*;", "", block)
        return block.replace(
            "{", f"{{\n    src: url(data:font/woff;base64,{data}) format('woff');", 1
        )

    return re.sub(r"@font-face\s*\{[^}]*\}", face, css)


def offline_resources(theme: str = "white") -> dict[str, str]:
    """reveal.js, its notes plugin, CSS, theme (fonts inlined) and slide size for the template."""
    dist = REVEAL_DIR / "dist"
    theme_css = (dist / "theme" / f"{theme}.css").read_text()

    def imported(match: re.Match) -> str:
        path = dist / "theme" / match.group(1)
        return _inline_fonts(path.read_text(), path.parent)

    theme_css = re.sub(r"@import url\(\.?/?([^)]+)\);", imported, theme_css)
    return {
        "reveal_css": (dist / "reveal.css").read_text(),
        "theme_css": theme_css,
        "reveal_js": _defang_comments((dist / "reveal.js").read_text(), first_only=True).replace(
            "</script", "<\\/script"
        ),
        "notes_js": _defang_js(NOTES_JS.read_text()),
        "deck_css": DECK_CSS,
        "width": str(SLIDE_SIZE[0]),
        "height": str(SLIDE_SIZE[1]),
    }


def _defang_js(js: str) -> str:
    """JS that is safe inside <script> and names no URL scheme (`:/\\/` is `://` in a JS string)."""
    return js.replace("</script", "<\\/script").replace("://", ":/\\/")


def _defang_comments(css_or_js: str, first_only: bool = False) -> str:
    """Drop the scheme of URLs inside /* comments */ (licence headers keep their text)."""

    def plain(match: re.Match) -> str:
        return re.sub(r"https?://", "", match.group(0))

    return re.sub(r"/\*.*?\*/", plain, css_or_js, count=1 if first_only else 0, flags=re.S)


def _defang_styles(page: str) -> str:
    """`_defang_comments` applied to every <style> block of a page."""
    return re.sub(
        r"(<style[^>]*>)(.*?)(</style>)",
        lambda m: m.group(1) + _defang_comments(m.group(2)) + m.group(3),
        page,
        flags=re.S,
    )


def _on_a_slide(cell: nbformat.NotebookNode) -> bool:
    """False for skipped cells and papermill's injected parameters (an empty first slide)."""
    if "injected-parameters" in cell.metadata.get("tags", []):
        return False
    return cell.metadata.get("slideshow", {}).get("slide_type") != "skip"


def remote_references(text: str) -> list[str]:
    """Every place in HTML/CSS that would fetch from the network (empty when offline)."""
    return [text[m.start() : m.end() + 60] for m in _REMOTE.finditer(text)]


# A Markdown level-1 heading, `# Title` (closing hashes allowed).
_TITLE_HEADING = re.compile(r"^# +(?P<title>.+?)(?: +#+)? *$", re.MULTILINE)


def deck_title(nb: nbformat.NotebookNode, fallback: str) -> str:
    """The deck's title (its HTML `<title>`, the PDF's Title): the first `# ` heading shown on a
    slide, in a Markdown cell or a cell's Markdown output; `fallback` when there is none."""
    for cell in nb.cells:
        if not _on_a_slide(cell) or cell.metadata.get("slideshow", {}).get("slide_type") == "notes":
            continue
        shown = [cell.source] if cell.cell_type == "markdown" else []
        shown += [o.get("data", {}).get("text/markdown", "") for o in cell.get("outputs", [])]
        for text in shown:
            if found := _TITLE_HEADING.search(text):
                return found["title"]
    return fallback


def export_deck(notebook: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Export an executed notebook as a self-contained reveal.js deck; refuse CDN links.

    Its title is `deck_title`'s, or "fmnist: <run folder>" for a deck without a heading.

    Raises:
        RuntimeError: the exported HTML still references a remote URL.
    """
    from nbconvert import SlidesExporter

    nb = nbformat.read(notebook, as_version=4)
    nb.cells = [c for c in nb.cells if _on_a_slide(c)]
    run_folder = Path(notebook).resolve().parent.name
    nb.metadata["title"] = deck_title(nb, f"fmnist: {run_folder}")
    exporter = SlidesExporter(
        template_name="offline_reveal",
        extra_template_basedirs=[str(STATIC)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    body, _ = exporter.from_notebook_node(
        nb, resources={"offline": offline_resources(), "metadata": {"name": Path(out).stem}}
    )
    body = _defang_styles(body)
    remote = remote_references(body)
    if remote:
        raise RuntimeError(
            f"the deck would load {len(remote)} remote resources, e.g. {remote[0]!r}; "
            "inline them or remove them from the template"
        )
    out = Path(out)
    out.write_text(body, encoding="utf-8")
    return out


# --- the deck as a PDF, printed by headless Chromium --------------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Chromium with everything that talks to the network off.
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
# reveal.js fires `pdf-ready` on its element once `?print-pdf` has laid out the pages.
_PDF_READY_JS = (
    "document.addEventListener('pdf-ready', () => { window.fmnistPdfReady = true; }, true)"
)

_DECODED_JS = (
    "Promise.all([document.fonts.ready, ...[...document.images].map(i => i.decode())])"
    ".then(() => true)"
)


class BrowserMissing(RuntimeError):
    """No headless Chromium to drive: Playwright or Debian's chromium is not installed."""


def browser_missing() -> str | None:
    """Why the deck cannot be printed on this machine, or None when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[test]')"
    if not Path(CHROMIUM).is_file():
        return f"no chromium at {CHROMIUM} (make browser, as root)"
    return None


def print_pdf(deck: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> Path:
    """Print a deck with reveal's `?print-pdf` layout: one 1280×720 page per slide, no notes.

    Raises:
        BrowserMissing: Playwright or chromium is not installed.
        RuntimeError: Chromium could not open or print the deck (the message names the file).
    """
    missing = browser_missing()
    if missing:
        raise BrowserMissing(missing)
    from playwright.sync_api import Error, sync_playwright

    deck = Path(deck).resolve()
    out = Path(out) if out is not None else deck.with_name(PDF_FILE)
    width, height = SLIDE_SIZE
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": width, "height": height})
                page.add_init_script(_PDF_READY_JS)
                page.goto(deck.as_uri() + "?print-pdf", wait_until="load")
                page.wait_for_function("window.fmnistPdfReady === true", timeout=60_000)
                # Chromium prints an image not yet decoded as nothing: decode every one first.
                page.evaluate(_DECODED_JS)
                page.pdf(
                    path=str(out),
                    width=f"{width}px",
                    height=f"{height}px",
                    print_background=True,
                    margin={"top": "0", "right": "0", "bottom": "0", "left": "0"},
                )
            finally:
                browser.close()
    except Error as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RuntimeError(f"{deck}: Chromium could not print the deck: {first}") from err
    return out


def export_pdf(deck: str | os.PathLike[str]) -> Path | None:
    """`print_pdf` beside the deck; when it cannot print, say why in one line and go on."""
    try:
        pdf = print_pdf(deck)
    except RuntimeError as why:  # BrowserMissing, or Chromium failed: the deck still stands
        log.warning("fmnist: %s skipped: %s; %s is there", PDF_FILE, why, Path(deck).name)
        return None
    log.info("fmnist: slides pdf -> %s", pdf)
    return pdf
