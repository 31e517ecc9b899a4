"""The slide deck: figures for `05_presentation` and its offline reveal.js export.

`export_deck` turns the executed presentation notebook into `slides.html` with nbconvert's
slides exporter and a template of ours that inlines reveal.js (vendored from npm, see
`static/reveal.js/README.md`), so the deck opens from `file://` with no network.
"""

from __future__ import annotations

import ast
import base64
import html
import os
import pkgutil
import re
from pathlib import Path

import nbformat

from fmnist_lib import config

STATIC = Path(__file__).resolve().parent / "static"
REVEAL_DIR = STATIC / "reveal.js"
TEMPLATE_DIR = STATIC / "offline_reveal"
DECK_FILE = "slides.html"
PRESENTATION = "05_presentation"
SLIDE_STARTS = ("slide", "subslide")
# Anything the browser would fetch: src/href attributes, CSS url(...) and @import.
_REMOTE = re.compile(
    r"""(?:\b(?:src|href|data)\s*=\s*["']?\s*|url\(\s*["']?|@import\s+["'])(?:https?:)?//""",
    re.IGNORECASE,
)
DECK_CSS = """
.reveal .slides { text-align: left; }
.reveal h1 { font-size: 1.9em; }
.reveal h2 { font-size: 1.35em; margin-bottom: 0.4em; }
.reveal .slides section { font-size: 0.7em; }
.reveal h1, .reveal h2 { text-transform: none; }
.reveal img.deck-figure { display: block; margin: 0.2em auto; max-width: 100%; }
.reveal table { font-size: 0.8em; margin: 0.3em auto; }
.reveal table td, .reveal table th { padding: 0.15em 0.5em; }
.reveal .jp-OutputArea-output { overflow: visible; }
.reveal .deck-note { color: #666; font-size: 0.85em; }
"""


# --- figures and facts for the slides ---------------------------------------------------


def figure_html(run_dir: str | os.PathLike[str], fig_id: str, max_height: int = 560) -> str:
    """The run's `figures/<fig_id>.png` as an embedded image, or a note that it is missing."""
    path = Path(run_dir) / "figures" / f"{fig_id}.png"
    if not path.is_file():
        name = html.escape(fig_id)
        return f'<p class="deck-note">Figure <code>{name}</code> is not in this run.</p>'
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<img class="deck-figure" alt="{html.escape(fig_id)}" '
        f'style="max-height: {max_height}px" src="data:image/png;base64,{data}">'
    )


def count_slides(notebook: nbformat.NotebookNode) -> int:
    """Slides the deck will have: cells that start a slide or a sub-slide."""
    return sum(
        c.metadata.get("slideshow", {}).get("slide_type") in SLIDE_STARTS for c in notebook.cells
    )


# --- the system-design diagram, read from the code itself -------------------------------


def library_modules() -> list[str]:
    """The modules of `fmnist_lib`, by name (without `__main__`)."""
    package = Path(__file__).resolve().parent
    return sorted(
        m.name for m in pkgutil.iter_modules([str(package)]) if not m.name.startswith("_")
    )


def imported_modules(source: str) -> list[str]:
    """`fmnist_lib` modules imported by Python source (`from fmnist_lib import a, b`)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module == "fmnist_lib":
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fmnist_lib."):
            found.append(node.module.split(".")[1])
    return sorted(set(found))


def notebook_imports(name: str) -> list[str]:
    """`fmnist_lib` modules a notebook imports."""
    nb = nbformat.read(config.NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    code = "\n".join(ln for ln in code.splitlines() if not ln.lstrip().startswith(("%", "!")))
    return imported_modules(code)


def imports_of_tests(tests_dir: Path | None = None) -> dict[str, list[str]]:
    """Test file stem -> the `fmnist_lib` modules it imports."""
    tests_dir = tests_dir or config.PROJ_ROOT / "tests"
    return {p.stem: imported_modules(p.read_text()) for p in sorted(tests_dir.glob("test_*.py"))}


def project_map() -> dict:
    """Notebooks, modules and who imports what: the input of `plots.system_design`."""
    from fmnist_lib import pipeline

    notebooks = list(pipeline.NOTEBOOKS)
    return {
        "notebooks": notebooks,
        "modules": library_modules(),
        "uses": {nb: notebook_imports(nb) for nb in notebooks},
        "tests": imports_of_tests(),
        "artifacts": [
            "*.ipynb (executed)",
            "figures/ (PNG + SVG)",
            "metrics.json, run.json",
            "models/<model>/",
            DECK_FILE,
        ],
    }


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
    """reveal.js, its CSS and the theme (fonts inlined) as strings for the template."""
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
        "deck_css": DECK_CSS,
    }


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


def export_deck(notebook: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Export an executed notebook as a self-contained reveal.js deck; refuse CDN links.

    Raises:
        RuntimeError: the exported HTML still references a remote URL.
    """
    from nbconvert import SlidesExporter

    nb = nbformat.read(notebook, as_version=4)
    nb.cells = [c for c in nb.cells if _on_a_slide(c)]
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
