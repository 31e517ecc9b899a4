"""Notebook parameters: declared once in each notebook, read once, typed and checked here.

A notebook's cell tagged `parameters` declares each parameter on one line, papermill-style:

    EPOCHS: int = 3  # training epochs, at least 1

The comment documents it (`papermill --help-notebook` prints it) and may state constraints
that `check` enforces before any notebook runs, in these words:

- `at least X`, `above X`, `at most X`, `below X`: numeric bounds;
- `in (A, B)`, `in [A, B]`, `in [A, B)`, `in (A, B]`: an interval;
- `one of a | b | c`: the only values allowed.

A comment that looks like a constraint but is none of these (`at least 1,000`, `>= 1`,
`between 1 and 9`, `one of mlp`) is an error when the cell is read, so a check is never
silently lost to a typo.

Rules that tie parameters together (ResNet50's image size against its stem, a weights path
that must exist, `AUGMENT`'s spelling) are in `training_rules`. Everything here is plain
Python: refusing a bad value never imports Keras or TensorFlow.
"""

from __future__ import annotations

import ast
import difflib
import io
import json
import math
import re
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from fmnist_lib import config

TYPES = ("int", "float", "str", "bool")
BOOL_WORDS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
WEIGHT_CHOICES = ("imagenet", "none", "auto")  # or a path to a Keras .h5 weights file
MIN_IMAGE_SIZE = {"imagenet": 32, "small": 28}  # Keras's minimum; the images' own size

_NUMBER = r"-?\d+(?:\.\d+)?(?:e-?\d+)?"
_BOUNDS = {
    "at least": (">=", lambda v, b: v >= b),
    "above": (">", lambda v, b: v > b),
    "at most": ("<=", lambda v, b: v <= b),
    "below": ("<", lambda v, b: v < b),
}
_BOUND = re.compile(rf"\b(at least|above|at most|below) ({_NUMBER})\b")
_INTERVAL = re.compile(rf"\bin ([\[(])\s*({_NUMBER})\s*,\s*({_NUMBER})\s*([\])])")
_CHOICES = re.compile(r"\bone of ([\w.+-]+(?:\s*\|\s*[\w.+-]+)+)")
_END = r"(?=$|[;)\s])"  # a recognised constraint ends here: `at least 1,000` is not `at least 1`
# What reads as a constraint; each must be exactly one of the recognised forms above.
_LOOKS_LIKE = (
    (
        re.compile(r"\b(?:at least|above|at most|below)\s+[-+.\d]"),
        re.compile(_BOUND.pattern + _END),
    ),
    (re.compile(r"\bin\s*[\[(]\s*[-+.\d]"), re.compile(_INTERVAL.pattern + _END)),
    (re.compile(r"\bone of\b"), re.compile(_CHOICES.pattern + _END)),
    (re.compile(r"(?:[<>]=?|=>|=<|≥|≤)\s*[-+.\d]|\bbetween\s+[-+.\d]"), None),
)
# ASCII decimal only, the same for the command line and YAML: no `0x10`, `3_0` or `'٣'`.
_INT_TEXT = re.compile(r"[-+]?[0-9]+", re.ASCII)
_FLOAT_TEXT = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?", re.ASCII)


class ParameterError(ValueError):
    """A profile or override names an unknown parameter or gives a value it cannot take."""


@dataclass(frozen=True)
class Spec:
    """One declared parameter: its type, default, help and the constraints the help states."""

    name: str
    type: str
    default: Any
    help: str

    @property
    def choices(self) -> tuple[str, ...]:
        found = _CHOICES.search(self.help)
        return tuple(c.strip() for c in found.group(1).split("|")) if found else ()

    def problems(self, value: Any) -> list[str]:
        """Why `value` (already of the right type) breaks this parameter's constraints."""
        out = []
        if self.choices and value not in self.choices:
            out.append(f"must be one of {', '.join(self.choices)}")
        if self.type in ("int", "float"):
            for words, bound in _BOUND.findall(self.help):
                if not _BOUNDS[words][1](value, float(bound)):
                    out.append(f"must be {words} {bound}")
            for left, low, high, right in _INTERVAL.findall(self.help):
                lo_ok = value >= float(low) if left == "[" else value > float(low)
                hi_ok = value <= float(high) if right == "]" else value < float(high)
                if not (lo_ok and hi_ok):
                    out.append(f"must be in {left}{low}, {high}{right}")
        return out


@cache
def specs(notebook: str) -> dict[str, Spec]:
    """The parameters a notebook declares, read once from its `parameters` cell.

    The notebook is read as the JSON it is: `nbformat` would validate it against its schema
    first, and importing that machinery alone takes a second.
    """
    path = config.NOTEBOOKS_DIR / f"{notebook}.ipynb"
    cells = [
        cell
        for cell in json.loads(path.read_text())["cells"]
        if "parameters" in cell.get("metadata", {}).get("tags", [])
    ]
    if len(cells) != 1:
        raise ParameterError(f"{path}: expected one cell tagged 'parameters', found {len(cells)}")
    source = cells[0]["source"]
    return parse_cell("".join(source) if isinstance(source, list) else source, path)


def parse_cell(source: str, path: Path | str = "<cell>") -> dict[str, Spec]:
    """`NAME: type = literal  # help` lines -> specs, in order."""
    comments = {
        tok.start[0]: tok.string.lstrip("#").strip()
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    }
    found: dict[str, Spec] = {}
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            raise ParameterError(f"{path}, line {node.lineno}: not a `NAME: type = value` line")
        kind = ast.unparse(node.annotation)
        if kind not in TYPES or node.value is None:
            raise ParameterError(f"{path}, line {node.lineno}: type must be one of {TYPES}")
        name = node.target.id
        help_text = comments.get(node.lineno, "")
        unread = unrecognised_constraint(help_text)
        if unread:
            raise ParameterError(
                f"{path}, line {node.lineno}: {name}'s comment has {unread!r}, which reads as a "
                "constraint but is none that is checked; write `at least X`, `above X`, "
                "`at most X`, `below X`, `in [A, B]` (or with round brackets) or `one of a | b`"
            )
        found[name] = Spec(name, kind, ast.literal_eval(node.value), help_text)
    return found


def unrecognised_constraint(help_text: str) -> str:
    """The first phrase of `help_text` that looks like a constraint but is not one that
    `Spec.problems` checks, or "" when there is none."""
    for looks, exact in _LOOKS_LIKE:
        for hit in looks.finditer(help_text):
            if exact is None or not exact.match(help_text, hit.start()):
                return help_text[hit.start() :].split(";")[0].strip()
    return ""


def coerce(name: str, value: Any, kind: str) -> Any:
    """A command-line string or YAML value as the declared type, parsed as Python would.

    Integers are ASCII decimal digits with an optional sign, floats ASCII decimal with an
    optional fraction and exponent (finite), booleans true/false/yes/no/1/0. Nothing else is
    converted: not `0x10`, `3_0`, `'٣'` or `on` (YAML values arrive as the same strings,
    `pipeline.StrictLoader` types no other forms).
    """
    if isinstance(value, str) and kind != "str":
        text = value.strip()
        if kind == "bool":
            if text.lower() not in BOOL_WORDS:
                raise ParameterError(f"{name}: expected bool (true/false), got {value!r}")
            return BOOL_WORDS[text.lower()]
        pattern = _INT_TEXT if kind == "int" else _FLOAT_TEXT
        if kind == "float" and text.lower().lstrip("+-") in ("nan", "inf", "infinity"):
            raise ParameterError(f"{name}: expected a finite float, got {value!r}")
        if not pattern.fullmatch(text):
            digits = "ASCII decimal digits" if kind == "int" else "a decimal number like 0.001"
            raise ParameterError(f"{name}: expected {kind}, got {value!r} (write {digits})")
        value = int(text) if kind == "int" else float(text)
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "str": isinstance(value, str),
    }[kind]
    if not ok:
        raise ParameterError(f"{name}: expected {kind}, got {value!r}")
    if kind == "float":
        value = float(value)
        if not math.isfinite(value):
            raise ParameterError(f"{name}: expected a finite float, got {value!r}")
    return value


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`; did you mean 'EPOCHS'?` naming the known names closest to `name`, case aside; or ""."""
    by_key = {k.upper(): k for k in known}
    close = difflib.get_close_matches(name.upper(), by_key, n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(by_key[c]) for c in close)}?" if close else ""


def check(notebook: str, values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Type and constrain `values` against the notebook's declarations.

    Returns:
        The typed values, and one line per problem, naming the notebook, the parameter,
        the value and what it must be.
    """
    declared = specs(notebook)
    typed: dict[str, Any] = {}
    errors: list[str] = []
    for name, value in values.items():
        spec = declared.get(name)
        if spec is None:
            errors.append(f"{notebook}: unknown parameter {name!r}{did_you_mean(name, declared)}")
            continue
        try:
            typed[name] = coerce(name, value, spec.type)
        except ParameterError as exc:
            errors.append(f"{notebook}: {exc}")
            continue
        for problem in spec.problems(typed[name]):
            errors.append(f"{notebook}: {name}={typed[name]!r} {problem} ({spec.help})")
    return typed, errors


def defaults(notebook: str) -> dict[str, Any]:
    """The default value of every parameter of a notebook."""
    return {name: spec.default for name, spec in specs(notebook).items()}


# Set by the pipeline itself: a profile or `-p` value would be ignored, so it is refused.
PIPELINE_SET = {
    "RUN_DIR": "the pipeline names the run folder (use --runs-dir)",
    "RESUME": "use --resume",
}
SPLIT_SIZES = {"train": 60_000, "test": 10_000}  # fmnist_lib.data.SPLIT_SIZES, without NumPy
NUM_CLASSES = 10


def subsample_problems(name: str, n: int, total: int | None) -> list[str]:
    """`data.subsample(labels, n)` keeps all when `n` is 0 (or >= `total`) and otherwise
    splits, stratified: both sides need an image of every class."""
    if n <= 0 or (total is not None and n >= total):
        return []
    least, most = NUM_CLASSES, None if total is None else total - NUM_CLASSES
    if n < least or (most is not None and n > most):
        shown = f"from {least} to {most}" if most is not None else f"at least {least}"
        return [f"{name}={n}: a stratified subsample keeps one image of each class: 0, or {shown}"]
    return []


def notebook_rules(notebook: str, params: dict[str, Any]) -> list[str]:
    """Rules that tie a notebook's parameters to each other or to the data's sizes, which one
    parameter's range cannot state; `params` has every parameter of `notebook`."""
    if notebook == "02_preprocessing":
        from fmnist_lib.augment import parse_augment

        n_train, total = params["N_TRAIN"], SPLIT_SIZES["train"]
        errors = subsample_problems("N_TRAIN", n_train, total)
        errors += subsample_problems("N_TEST", params["N_TEST"], SPLIT_SIZES["test"])
        kept = n_train if 0 < n_train < total else total
        val = math.ceil(params["VAL_FRACTION"] * kept)  # as sklearn's train_test_split rounds
        if kept >= NUM_CLASSES and min(val, kept - val) < NUM_CLASSES:
            errors.append(
                f"N_TRAIN={n_train}, VAL_FRACTION={params['VAL_FRACTION']}: the split keeps "
                f"{kept - val} training and {val} validation images, and each side needs at "
                f"least {NUM_CLASSES} (one per class)"
            )
        try:
            parse_augment(params["AUGMENT"])
        except ValueError as exc:
            errors.append(str(exc))
        return errors
    if notebook == "03_label_errors":
        pooled = sum(SPLIT_SIZES.values())
        errors = subsample_problems("N_IMAGES", params["N_IMAGES"], pooled)
        audited = params["N_IMAGES"] if 0 < params["N_IMAGES"] < pooled else pooled
        if not errors and audited < NUM_CLASSES * params["FOLDS"]:
            errors.append(
                f"N_IMAGES={params['N_IMAGES']}, FOLDS={params['FOLDS']}: every fold holds an "
                f"image of each class, so N_IMAGES must be at least {NUM_CLASSES * params['FOLDS']}"
            )
        return errors
    if notebook == "03_training":
        return training_rules(params)
    return []


def training_rules(params: dict[str, Any]) -> list[str]:
    """Rules of `03_training` that tie parameters together; `params` has every parameter."""
    from fmnist_lib.augment import parse_augment

    errors = []
    try:
        parse_augment(params["AUGMENT"])
    except ValueError as exc:
        errors.append(str(exc))
    errors += subsample_problems("TRAIN_LIMIT", params["TRAIN_LIMIT"], None)
    errors += subsample_problems("VAL_LIMIT", params["VAL_LIMIT"], None)
    if params["MODEL"] == "resnet50":
        least = MIN_IMAGE_SIZE.get(params["STEM"], max(MIN_IMAGE_SIZE.values()))
        if params["IMAGE_SIZE"] < least:
            errors.append(
                f"IMAGE_SIZE={params['IMAGE_SIZE']}: ResNet50 with STEM={params['STEM']!r} "
                f"needs inputs of at least {least}x{least}"
            )
        errors += weights_problems(params["WEIGHTS"])
    if params["EARLY_STOPPING"] and params["VAL_EVERY"] != 1:
        errors.append(
            f"EARLY_STOPPING={params['EARLY_STOPPING']} watches every epoch's validation loss: "
            f"it needs VAL_EVERY=1, not {params['VAL_EVERY']}"
        )
    return errors


def weights_problems(weights: str) -> list[str]:
    """`WEIGHTS` is a choice or an existing Keras `.h5` file."""
    if weights in WEIGHT_CHOICES:
        return []
    if not Path(weights).is_file():
        return [f"WEIGHTS={weights!r}: not one of {', '.join(WEIGHT_CHOICES)} and no such file"]
    if not weights.endswith(".h5"):
        return [f"WEIGHTS={weights!r}: expected a Keras .h5 / .weights.h5 weights file"]
    return []


def describe(notebooks: tuple[str, ...]) -> str:
    """A table of every valid parameter per notebook, for error messages and `params`."""
    lines = []
    for notebook in notebooks:
        lines.append(f"  {notebook}:")
        for spec in specs(notebook).values():
            lines.append(f"    {spec.name}: {spec.type} = {spec.default!r}  # {spec.help}")
    return "\n".join(lines)
