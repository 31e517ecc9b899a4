"""Run the notebooks in order with papermill, into a fresh `runs/<run-id>/` folder.

A profile (`params/NAME.yaml`) names parameters shared by every notebook that declares
them and parameters per notebook; `03_training` runs once per entry of its list.
Everything is validated against `papermill.inspect_notebook` before any cell executes.
"""

from __future__ import annotations

import ast
import datetime as dt
import logging
import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fmnist_lib import config, records

NOTEBOOKS = ("01_eda", "02_preprocessing", "03_training", "04_results", "05_presentation")
TRAINING = "03_training"
KERNEL = "python3"
BOOL_WORDS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


class ParameterError(ValueError):
    """A profile or override names an unknown parameter or gives a value of the wrong type."""


class StepFailed(RuntimeError):
    """A notebook raised; the partly executed copy is kept in the run folder."""


def exit_code(exc: BaseException) -> int | None:
    """Print a one-line error for a known failure and return its exit code; None if unknown.

    Invalid parameters exit 2; a failed notebook or unusable data exit 1.
    """
    from fmnist_lib.data import DataError

    if isinstance(exc, ParameterError):
        print(f"fmnist: error: {exc}", file=sys.stderr)
        return 2
    if isinstance(exc, StepFailed):
        print(f"fmnist: error: {exc}", file=sys.stderr)
        return 1
    if isinstance(exc, DataError):
        print(f"fmnist: data error: {exc}", file=sys.stderr)
        return 1
    return None


@dataclass
class Step:
    """One papermill execution: a notebook, the name of its output and its parameters."""

    notebook: str
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> Path:
        return config.NOTEBOOKS_DIR / f"{self.notebook}.ipynb"


# --- parameters --------------------------------------------------------------------


def notebook_parameters(notebook: str) -> dict[str, dict[str, Any]]:
    """The parameters cell of a notebook: name -> {type, default, help}."""
    import papermill

    path = config.NOTEBOOKS_DIR / f"{notebook}.ipynb"
    found = papermill.inspect_notebook(str(path))
    return {
        name: {
            "type": spec["inferred_type_name"],
            "default": spec["default"],
            "help": spec["help"],
        }
        for name, spec in found.items()
    }


def describe_parameters(specs: dict[str, dict[str, dict[str, Any]]]) -> str:
    """A table of every valid parameter per notebook, for error messages and --help."""
    lines = []
    for notebook, params in specs.items():
        lines.append(f"  {notebook}:")
        for name, spec in params.items():
            lines.append(f"    {name}: {spec['type']} = {spec['default']}  # {spec['help']}")
    return "\n".join(lines)


def coerce(name: str, value: Any, type_name: str) -> Any:
    """Convert a command-line string or YAML value to the declared type, or raise."""
    if isinstance(value, str) and type_name != "str":
        text = value.strip()
        if type_name == "bool":
            if text.lower() not in BOOL_WORDS:
                raise ParameterError(f"{name}: expected bool (true/false), got {value!r}")
            return BOOL_WORDS[text.lower()]
        try:
            value = int(text) if type_name == "int" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError):
            raise ParameterError(f"{name}: expected {type_name}, got {value!r}") from None
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "str": isinstance(value, str),
    }.get(type_name, True)
    if not ok:
        raise ParameterError(f"{name}: expected {type_name}, got {value!r}")
    return float(value) if type_name == "float" else value


def load_profile(name: str) -> dict[str, Any]:
    """Read `params/NAME.yaml`."""
    path = config.PARAMS_DIR / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in config.PARAMS_DIR.glob("*.yaml"))
        raise ParameterError(f"unknown profile {name!r}: no {path}; profiles: {', '.join(known)}")
    profile = yaml.safe_load(path.read_text()) or {}
    unknown = set(profile) - {"description", "parameters", "notebooks"}
    if unknown:
        raise ParameterError(f"{path}: unknown top-level keys {sorted(unknown)}")
    return profile


def plan(
    profile_name: str,
    overrides: dict[str, str] | None = None,
    models: list[str] | None = None,
    notebooks: list[str] | None = None,
) -> list[Step]:
    """Validate a profile plus `-p` overrides and return the steps to execute.

    `models` keeps only those training runs, `notebooks` only those notebooks (all when None).
    """
    profile = load_profile(profile_name)
    specs = {nb: notebook_parameters(nb) for nb in NOTEBOOKS}
    shared = dict(profile.get("parameters") or {})
    per_notebook = profile.get("notebooks") or {}
    errors: list[str] = []

    for nb in per_notebook:
        if nb not in NOTEBOOKS:
            errors.append(f"profile {profile_name}: unknown notebook {nb!r}")
    for nb in notebooks or ():
        if nb not in NOTEBOOKS:
            errors.append(f"unknown notebook {nb!r}; notebooks: {', '.join(NOTEBOOKS)}")
    declared = {name for params in specs.values() for name in params}
    for name in [*shared, *(overrides or {})]:
        if name not in declared:
            errors.append(f"unknown parameter {name!r}")

    steps: list[Step] = []
    for nb in NOTEBOOKS:
        if notebooks and nb not in notebooks:
            continue
        entries = per_notebook.get(nb) or {}
        if nb == TRAINING:
            entries = entries if isinstance(entries, list) else [entries]
        for entry in entries if isinstance(entries, list) else [entries]:
            params = {k: v for k, v in shared.items() if k in specs[nb]}
            params.update(entry or {})
            params.update({k: v for k, v in (overrides or {}).items() if k in specs[nb]})
            typed: dict[str, Any] = {}
            for key, value in params.items():
                if key not in specs[nb]:
                    errors.append(f"{nb}: unknown parameter {key!r}")
                    continue
                try:
                    typed[key] = coerce(key, value, specs[nb][key]["type"])
                except ParameterError as exc:
                    errors.append(f"{nb}: {exc}")
            if nb == TRAINING and not errors:
                errors.extend(_check_training_choice({**defaults(nb), **typed}))
            name = nb if nb != TRAINING else f"{nb}_{typed.get('MODEL', 'model')}"
            if nb == TRAINING and models and typed.get("MODEL") not in models:
                continue
            steps.append(Step(nb, name, typed))
    names = [s.name for s in steps]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        errors.append(f"two training runs would write the same folder: {dupes}")
    if errors:
        raise ParameterError(
            "invalid parameters:\n  - "
            + "\n  - ".join(dict.fromkeys(errors))
            + "\nvalid parameters (name: type = default  # help):\n"
            + describe_parameters(specs)
        )
    return steps


def defaults(notebook: str) -> dict[str, Any]:
    """The default value of every parameter of a notebook."""
    found = {}
    for name, spec in notebook_parameters(notebook).items():
        try:
            found[name] = ast.literal_eval(spec["default"])
        except (ValueError, SyntaxError):
            found[name] = spec["default"]
    return found


def effective_parameters(step: Step) -> dict[str, Any]:
    """The notebook's defaults with the step's values applied: what the run really used."""
    return {**defaults(step.notebook), **step.parameters}


def _check_training_choice(params: dict[str, Any]) -> list[str]:
    """Model, stem, weights, image size and training recipe, checked before anything runs."""
    from fmnist_lib.models import ModelConfigError, validate_choice

    try:
        validate_choice(
            params["MODEL"],
            params["FINE_TUNE"],
            params["WEIGHTS"],
            params["IMAGE_SIZE"],
            params["AUGMENT"],
            params.get("STEM", "imagenet"),
        )
    except ModelConfigError as exc:
        return [f"{TRAINING}: {exc}"]
    from fmnist_lib.distribute import check_precision
    from fmnist_lib.train import TrainConfig

    try:
        check_precision(params.get("PRECISION", "float32"))
        TrainConfig(
            optimizer=params.get("OPTIMIZER", "adam"),
            ema=params.get("EMA", 0.0),
            val_every=params.get("VAL_EVERY", 1),
            early_stopping=params.get("EARLY_STOPPING", 0),
        )
    except ValueError as exc:
        return [f"{TRAINING}: {exc}"]
    return []


# --- execution ---------------------------------------------------------------------


def new_run_dir(profile: str, root: Path | None = None) -> Path:
    """Create a fresh, never-shared run folder `runs/<timestamp>-<profile>-<random>`."""
    root = root or config.runs_dir()
    root.mkdir(parents=True, exist_ok=True)
    while True:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = root / f"{stamp}-{profile}-{secrets.token_hex(3)}"
        try:
            path.mkdir()  # atomic: two runs can never get the same folder
        except FileExistsError:
            continue
        (path / "figures").mkdir()
        return path


class _CellOutput(logging.Filter):
    """Let through the notebook's own output lines, not papermill's bookkeeping."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not msg.startswith(("Executing", "Ending Cell", "Input Notebook", "Output Notebook"))


def _stream_cell_output(prefix: str) -> logging.Handler:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(f"    {prefix} | %(message)s"))
    handler.addFilter(_CellOutput())
    logger = logging.getLogger("papermill")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    return handler


def execute(step: Step, run_dir: Path, log_output: bool = True) -> float:
    """Execute one step with papermill into the run folder; return its wall time."""
    import papermill

    output = run_dir / f"{step.name}.ipynb"
    params = {**step.parameters, "RUN_DIR": str(run_dir)}
    handler = _stream_cell_output(step.name) if log_output else None
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(step.source),
            str(output),
            parameters=params,
            kernel_name=KERNEL,
            cwd=str(run_dir),
            progress_bar=False,
            log_output=log_output,
            request_save_on_cell_execute=True,
        )
    except papermill.PapermillExecutionError as exc:
        raise StepFailed(
            f"{step.name} failed in cell [{exc.exec_count}] ({exc.ename}: {exc.evalue}); "
            f"the partly executed notebook is kept at {output}"
        ) from exc
    finally:
        if handler is not None:
            logging.getLogger("papermill").removeHandler(handler)
    return time.perf_counter() - start


def export_slides(run_dir: Path) -> str | None:
    """Export the executed presentation as the run's offline `slides.html`, if it ran."""
    from fmnist_lib import slides

    executed = run_dir / f"{slides.PRESENTATION}.ipynb"
    if not executed.is_file():
        return None
    deck = slides.export_deck(executed, run_dir / slides.DECK_FILE)
    print(f"fmnist: slides -> {deck}", flush=True)
    return deck.name


def run_pipeline(
    profile: str,
    overrides: dict[str, str] | None = None,
    models: list[str] | None = None,
    runs_root: Path | None = None,
    resume: Path | None = None,
    log_output: bool = True,
    notebooks: list[str] | None = None,
    run_dir: Path | None = None,
) -> Path:
    """Validate, then execute every step; return the run folder.

    With `resume`, finish a killed or failed run in its own folder: steps recorded as
    done are skipped and training continues from its last checkpoint. `run_dir` runs into
    that folder instead of a fresh one (a sweep names one per point); `notebooks` as in `plan`.
    """
    from fmnist_lib import data

    steps = plan(profile, overrides, models, notebooks)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # kernels inherit: hide C++ log noise
    provenance = data.load_fashion_mnist().provenance()  # fail before any notebook runs
    if resume is not None:
        run_dir = Path(resume).resolve()
        record = records.read_json(run_dir / "run.json")
        if record is None:
            raise ParameterError(f"--resume {run_dir}: no run.json there")
        done = {s["name"] for s in record["steps"] if s["status"] == "done"}
        for step in steps:
            if step.notebook == TRAINING:
                step.parameters["RESUME"] = True
        record["parameters"] = {s.name: effective_parameters(s) for s in steps}
        record.setdefault("resumed", []).append(
            {"at": dt.datetime.now().isoformat(timespec="seconds"), "overrides": overrides or {}}
        )
    else:
        if run_dir is None:
            run_dir = new_run_dir(profile, runs_root)
        else:
            run_dir = Path(run_dir).resolve()
            if (run_dir / "run.json").exists():
                raise ParameterError(f"{run_dir} already holds a run: resume it instead")
            (run_dir / "figures").mkdir(parents=True, exist_ok=True)
        done = set()
        record = {
            "run_id": run_dir.name,
            "profile": profile,
            "command": sys.argv,
            "overrides": overrides or {},
            "started": dt.datetime.now().isoformat(timespec="seconds"),
            "status": "running",
            "parameters": {s.name: effective_parameters(s) for s in steps},
            "data": provenance,
            **records.environment_record(),
            "steps": [],
        }
    record["status"] = "running"
    record["steps"] = [s for s in record["steps"] if s["name"] in done]
    records.write_json(run_dir / "run.json", record)
    print(f"fmnist: run folder {run_dir}", flush=True)
    earlier = sum(s.get("seconds", 0.0) for s in record["steps"])  # steps of earlier sessions
    total = time.perf_counter()
    for i, step in enumerate(steps, 1):
        if step.name in done:
            print(f"[{i}/{len(steps)}] {step.name}: already done, skipped", flush=True)
            continue
        print(f"[{i}/{len(steps)}] {step.name}: running {step.parameters}", flush=True)
        entry = {"name": step.name, "notebook": f"{step.name}.ipynb", "status": "running"}
        record["steps"].append(entry)
        records.write_json(run_dir / "run.json", record)
        try:
            entry["seconds"] = round(
                execute(step, run_dir, log_output and step.notebook == TRAINING), 2
            )
        except StepFailed as exc:
            entry.update(status="failed", error=str(exc))
            record.update(status="failed", failed_step=step.name)
            records.write_json(run_dir / "run.json", record)
            raise
        entry["status"] = "done"
        records.write_json(run_dir / "run.json", record)
        print(f"[{i}/{len(steps)}] {step.name}: done in {entry['seconds']:.1f} s", flush=True)
    record["slides"] = export_slides(run_dir)
    record.update(
        status="done",
        finished=dt.datetime.now().isoformat(timespec="seconds"),
        seconds=round(earlier + time.perf_counter() - total, 2),
    )
    records.write_json(run_dir / "run.json", record)
    print(f"fmnist: finished in {record['seconds']:.0f} s -> {run_dir}", flush=True)
    return run_dir
