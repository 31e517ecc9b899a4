"""Run the notebooks in order with papermill, into a fresh `runs/<run-id>/` folder.

A profile (`params/NAME.yaml`) names parameters shared by every notebook that declares
them and parameters per notebook; `03_training` runs once per entry of its list.
Everything is validated against the notebooks' own declarations (`fmnist_lib.parameters`)
before any cell executes. One process at a time executes a run folder; `run.json` records how
the run was started, and a resume continues it exactly so.

Progress goes to `logging`; the command line shows it as plain lines on stdout
(`config.log_to_console`). Known failures are the command line's own one-line errors (`exit_code`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import secrets
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fmnist_lib import config, parameters, records
from fmnist_lib.parameters import ParameterError

TRAINING = "03_training"
# Batch runs execute in the interpreter running them (Jupyter's native kernel), whatever
# kernels are installed; the notebooks declare `fmnist` (`make venv`) for JupyterLab, and a
# batch run leaves that declaration as it is.
KERNEL = "python3"
# Native libraries' log lines (TensorFlow's C++ logging) stay out of cell output, which holds
# what the notebook prints; they go to the kernel's log with the rest of its process output.
KERNEL_ARGUMENTS = ["--IPKernelApp.capture_fd_output=False"]
PROFILE_KEYS = {"description", "parameters", "notebooks"}
PARAMS_HINT = "`python -m fmnist_lib params [--profile NAME]` lists every parameter"

log = logging.getLogger(__name__)


class StepFailed(RuntimeError):
    """A notebook raised; the partly executed copy is kept in the run folder."""


class RunError(RuntimeError):
    """The run cannot go on for a reason outside the notebooks (folder, record, lock)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, as Ctrl-C raises KeyboardInterrupt."""


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Handle SIGTERM as Ctrl-C while the block runs: the run or sweep is recorded
    `interrupted` and can be resumed. A second SIGTERM kills as usual. In the main thread
    only (Python's rule for signal handlers); elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the next one is not caught
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_code(exc: BaseException) -> int | None:
    """Print a one-line error for a known failure and return its exit code; None if unknown.

    Invalid parameters and a run folder held by another process exit 2; a failed notebook,
    unusable data, an unusable runs folder, a damaged run record, an OS error during the run
    or no clone to run exit 1; Ctrl-C exits 130 and SIGTERM 143.
    """
    from fmnist_lib.data import DataError

    if isinstance(exc, Terminated):
        print(f"fmnist: terminated (SIGTERM){': ' + str(exc) if str(exc) else ''}", file=sys.stderr)
        return 128 + signal.SIGTERM
    if isinstance(exc, KeyboardInterrupt):
        print(f"fmnist: interrupted{': ' + str(exc) if str(exc) else ''}", file=sys.stderr)
        return 130
    if isinstance(exc, ParameterError | RunLocked):
        print(f"fmnist: error: {exc}", file=sys.stderr)
        return 2
    if isinstance(exc, StepFailed | RunError):
        print(f"fmnist: error: {exc}", file=sys.stderr)
        return 1
    if isinstance(exc, DataError):
        print(f"fmnist: data error: {exc}", file=sys.stderr)
        return 1
    if isinstance(exc, config.CloneRequired):
        print(f"fmnist: error: {exc}", file=sys.stderr)
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


MAX_YAML_BYTES = 64 * 1024  # profiles and grids are a few hundred bytes; refuse before parsing


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader for profiles and grids, stricter: a key given twice, an anchor or
    an alias is an error at its line and column, and only YAML 1.2's plain forms are typed
    (`true`/`false`, decimal numbers, `null`): `on`, `0x10` and `3_0` stay strings, which
    `parameters.coerce` then reads exactly as it reads the command line."""

    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag.rsplit(":", 1)[-1] == "null"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases (&name, *name) are not allowed", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^[-+]?[0-9]+$", "-+0123456789"),
    ("float", r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$", "-+.0123456789"),
):
    StrictLoader.add_implicit_resolver(
        f"tag:yaml.org,2002:{_tag}", re.compile(_pattern, re.ASCII), list(_first)
    )


def read_yaml(path: Path, what: str) -> dict[str, Any]:
    """A YAML mapping from `path` (`StrictLoader`, UTF-8, at most `MAX_YAML_BYTES`); a syntax
    error, a duplicate key, an alias, a byte that is not UTF-8 or another shape names the file
    and line."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise ParameterError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    if len(raw) > MAX_YAML_BYTES:
        raise ParameterError(
            f"{path}: larger than {MAX_YAML_BYTES // 1024} KiB; a {what} is a short file"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ParameterError(
            f"{path}, line {line}, column {column}: not UTF-8 (byte 0x{raw[exc.start]:02x}); "
            f"save the {what} as UTF-8"
        ) from None
    try:
        loaded = yaml.load(text, Loader=StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ParameterError(f"{path}{where}: not valid YAML ({problem})") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ParameterError(
            f"{path}: a {what} is a mapping of keys to values, not a {type(loaded).__name__}"
        )
    return loaded


def load_profile(name: str) -> dict[str, Any]:
    """Read `params/NAME.yaml`, checking its shape: parameters and notebooks are mappings,
    each notebook's entry a mapping (a list of mappings for `03_training`)."""
    path = config.PARAMS_DIR / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in config.PARAMS_DIR.glob("*.yaml"))
        raise ParameterError(
            f"unknown profile {name!r}: no {path}; profiles: {', '.join(known)}"
            + parameters.did_you_mean(name, known)
        )
    profile = read_yaml(path, "profile")
    unknown = set(profile) - PROFILE_KEYS
    if unknown:
        raise ParameterError(f"{path}: unknown top-level keys {sorted(unknown)}")
    for key in ("parameters", "notebooks"):
        if not isinstance(profile.get(key) or {}, dict):
            raise ParameterError(f"{path}: `{key}` must be a mapping of names to values")
    for nb, entry in (profile.get("notebooks") or {}).items():
        entries = entry if isinstance(entry, list) and nb == TRAINING else [entry]
        for item in entries:
            if not isinstance(item or {}, dict):
                expected = "a mapping or a list of mappings" if nb == TRAINING else "a mapping"
                raise ParameterError(
                    f"{path}: notebooks.{nb} must be {expected} of parameters, "
                    f"got {type(item).__name__} {item!r}"
                )
    return profile


def plan(
    profile_name: str,
    overrides: dict[str, Any] | None = None,
    models: list[str] | None = None,
    notebooks: list[str] | None = None,
) -> list[Step]:
    """Validate a profile plus `-p` overrides and return the steps to execute.

    Every value is typed and checked against the constraints its notebook declares, and the
    training rules, before anything runs; no Keras is imported. `models` keeps only those
    training runs, `notebooks` only those notebooks (all when None).
    """
    config.require_clone()  # a sweep point on a worker without the clone stops here, clearly
    profile = load_profile(profile_name)
    shared = dict(profile.get("parameters") or {})
    per_notebook = profile.get("notebooks") or {}
    errors: list[str] = []

    for nb in per_notebook:
        if nb not in config.NOTEBOOKS:
            errors.append(f"profile {profile_name}: unknown notebook {nb!r}")
    for nb in notebooks or ():
        if nb not in config.NOTEBOOKS:
            errors.append(f"unknown notebook {nb!r}; notebooks: {', '.join(config.NOTEBOOKS)}")
    declared = {name for nb in config.NOTEBOOKS for name in parameters.specs(nb)}
    for name in [*shared, *(overrides or {})]:
        if name not in declared:
            errors.append(f"unknown parameter {name!r}{parameters.did_you_mean(name, declared)}")
    entries = [
        (f"profile {profile_name}, notebooks.{nb}", item or {})
        for nb, entry in per_notebook.items()
        for item in (entry if isinstance(entry, list) else [entry])
    ]
    sources = [(f"profile {profile_name}", shared), *entries, ("-p", overrides or {})]
    for name, why in parameters.PIPELINE_SET.items():
        given = next((where for where, values in sources if name in values), None)
        if given:
            errors.append(f"{name} is set by the pipeline, not by {given}: {why}")
    for flag, names in (("--models", models), ("--notebooks", notebooks)):
        if names is not None and (not names or not all(n.strip() for n in names)):
            errors.append(f"{flag} {','.join(names)!r}: empty name; leave {flag} out to run all")

    steps: list[Step] = []
    trained: list[str] = []
    for nb in config.NOTEBOOKS:
        specs = parameters.specs(nb)
        entries = per_notebook.get(nb) or {}
        for entry in entries if isinstance(entries, list) else [entries]:
            values = {k: v for k, v in shared.items() if k in specs}
            values.update(entry or {})
            values.update({k: v for k, v in (overrides or {}).items() if k in specs})
            typed, problems = parameters.check(nb, values)
            errors += problems
            if not problems:
                everything = {**parameters.defaults(nb), **typed}
                errors += [f"{nb}: {e}" for e in parameters.notebook_rules(nb, everything)]
            name = nb if nb != TRAINING else f"{nb}_{typed.get('MODEL', 'model')}"
            if nb == TRAINING:
                trained.append(typed.get("MODEL", ""))
                if models and typed.get("MODEL") not in models:
                    continue
            if notebooks and nb not in notebooks:
                continue
            steps.append(Step(nb, name, typed))
    for model in models or ():
        if model.strip() and model not in trained:  # an empty name is refused above
            errors.append(
                f"--models: {model!r} is not a training run of profile {profile_name} "
                f"(it trains {', '.join(trained) or 'nothing'})"
            )
    names = [s.name for s in steps]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        errors.append(f"two training runs would write the same folder: {dupes}")
    if errors:
        raise ParameterError(
            "invalid parameters:\n  - " + "\n  - ".join(dict.fromkeys(errors)) + f"\n{PARAMS_HINT}"
        )
    return steps


def effective_parameters(step: Step) -> dict[str, Any]:
    """The notebook's defaults with the step's values applied: what the run really used."""
    return {**parameters.defaults(step.notebook), **step.parameters}


def describe_profile(profile_name: str) -> str:
    """Every step of a profile with the values it would run with (`params --profile NAME`):
    `NAME: type = value  # help`, and `(profile; default X)` where the profile sets it."""
    lines = [f"profile {profile_name}: the values each step runs with"]
    for step in plan(profile_name):
        lines.append(f"  {step.name}:")
        for name, spec in parameters.specs(step.notebook).items():
            value = effective_parameters(step)[name]
            line = f"    {name}: {spec.type} = {value!r}  # {spec.help}"
            if name in step.parameters and value != spec.default:
                line += f" (profile; default {spec.default!r})"
            lines.append(line)
    return "\n".join(lines)


# --- execution ---------------------------------------------------------------------


def new_run_dir(profile: str, root: Path | None = None) -> Path:
    """Create a fresh, never-shared run folder `runs/<timestamp>-<profile>-<random>`."""
    root = root or config.runs_dir()
    try:
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
    except OSError as exc:
        raise RunError(
            f"cannot create a run folder under {root}: {exc.strerror or exc}; choose another "
            "with --runs-dir or FMNIST_RUNS_DIR"
        ) from None


# --- one writer per run folder -----------------------------------------------------

LOCK_FILE, PID_FILE = ".run.lock", ".run.pid"


class RunLocked(RuntimeError):
    """Another live process is executing this run folder."""


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run folder's exclusive lock (`filelock`, an OS file lock) while executing it.

    The OS releases the lock when its holder dies, so a lock left by a killed process is
    simply taken over; its pid file says whose it was.
    """
    from filelock import FileLock, Timeout

    lock = FileLock(run_dir / LOCK_FILE, timeout=0)
    pid_file = run_dir / PID_FILE
    try:
        lock.acquire()
    except Timeout:
        raise RunLocked(
            f"run {run_dir.name} is being executed by pid {_read_pid(pid_file) or '?'}; "
            "wait for it to finish or stop it first"
        ) from None
    except OSError as exc:  # a read-only folder, a full disk
        raise RunError(
            f"{run_dir}: cannot lock the run folder ({exc.strerror or exc}); a run is executed "
            "in a folder it can write to"
        ) from None
    stale = _read_pid(pid_file)
    if stale:
        log.warning(
            "fmnist: run %s: taking over the lock of pid %s, which is no longer running",
            run_dir.name,
            stale,
        )
    try:
        pid_file.write_text(f"{os.getpid()}\n")
    except OSError as exc:
        lock.release()
        raise RunError(f"{pid_file}: cannot write ({exc.strerror or exc})") from None
    try:
        yield
    finally:
        pid_file.unlink(missing_ok=True)
        lock.release()


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


# --- run records ---------------------------------------------------------------------


def read_record(run_dir: Path) -> dict[str, Any]:
    """A run folder's `run.json`, or a one-line reason why it cannot be resumed."""
    path = run_dir / "run.json"
    if not path.exists():
        raise ParameterError(f"--resume {run_dir}: no run.json there")
    try:
        record = records.read_json(path)
    except json.JSONDecodeError as exc:
        raise RunError(
            f"{path} is damaged ({exc.msg} at line {exc.lineno}, column {exc.colno}): the run "
            "cannot be resumed; start a new one"
        ) from None
    except UnicodeDecodeError as exc:
        raise RunError(
            f"{path} is damaged (not UTF-8 text, byte {exc.start}): the run cannot be resumed; "
            "start a new one"
        ) from None
    except OSError as exc:
        raise RunError(f"{path}: cannot read the run record ({exc.strerror})") from None
    if not isinstance(record, dict) or "profile" not in record:
        raise RunError(f"{path} is not a run record of this project: it cannot be resumed")
    problem = records.run_record_problem(record, required=("profile", "status", "steps"))
    if problem:
        raise RunError(f"{path} is damaged ({problem}): the run cannot be resumed; start a new one")
    return record


def resumed_request(
    record: dict[str, Any],
    profile: str | None,
    overrides: dict[str, Any] | None,
    models: list[str] | None,
    notebooks: list[str] | None = None,
) -> tuple[str, dict[str, Any], list[str] | None, list[str] | None]:
    """What a resume re-plans from: the run's own record. A `--profile`, `-p`, `--models` or
    `--notebooks` that differs from it is refused, since it would change a run half done."""

    def listed(names: list[str] | None) -> list[str] | None:
        return sorted(names) if names else None

    wanted = {
        "--profile": (profile, record["profile"]),
        "-p": (overrides or None, record.get("overrides") or None),
        "--models": (listed(models), listed(record.get("models"))),
        "--notebooks": (listed(notebooks), listed(record.get("notebooks"))),
    }
    for flag, (given, recorded) in wanted.items():
        if given is not None and given != recorded:
            raise ParameterError(
                f"--resume {record.get('run_id', '')}: this run was recorded with {flag} "
                f"{recorded!r}, not {given!r}; a resume continues the run as recorded, so leave "
                f"out {flag}"
            )
    return (
        record["profile"],
        record.get("overrides") or {},
        record.get("models"),
        record.get("notebooks"),
    )


class _CellOutput(logging.Filter):
    """Let through the notebook's own output lines, not papermill's bookkeeping, each without
    the newline it ends with (the handler adds one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage().rstrip("\n")
        record.msg, record.args = msg, ()
        bookkeeping = ("Executing", "Ending Cell", "Input Notebook", "Output Notebook")
        return bool(msg) and not msg.startswith(bookkeeping)


class _PrintedLines:
    """Where papermill writes a cell's printed stream (`stdout_file`, `stderr_file`): each
    complete line becomes a record of papermill's logger (stdout INFO, stderr WARNING).

    Only what a cell prints reaches the console; what it displays (the model summary, tables,
    figures) stays in the executed notebook.
    """

    def __init__(self, level: int) -> None:
        self.level, self._partial = level, ""

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            logging.getLogger("papermill").log(self.level, line)
        return len(text)

    def flush(self) -> None:
        """Lines are passed on as they end; a line still open waits for its end or `close`."""

    def close(self) -> None:
        if self._partial:
            self.write("\n")


def _stream_cell_output(prefix: str) -> logging.Handler:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(f"    {prefix} | %(message)s"))
    handler.addFilter(_CellOutput())
    logger = logging.getLogger("papermill")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    return handler


def _drop_papermill_log() -> logging.Handler:
    """A handler that keeps papermill's records from the last-resort handler; removed after."""
    handler = logging.NullHandler()
    logger = logging.getLogger("papermill")
    logger.propagate = False
    logger.addHandler(handler)
    return handler


def quiet_kernel_manager(log: Any) -> type:
    """A Jupyter kernel manager whose kernels write their own process output to `log`.

    A kernel's process output is not the notebook's: it is the kernel application's log
    and native libraries' start-up lines, and on Ctrl-C the kernel's shutdown tracebacks.
    Cell output still comes through papermill and into the executed notebook. The kernel's
    sockets are encrypted with CurveZMQ keys made here, where pyzmq and the kernel support it,
    so ipykernel has no plain-text TCP to warn about.
    """
    import zmq
    from jupyter_client import AsyncKernelManager

    class LoggedKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw: Any) -> None:
            kw.setdefault("stdout", log)
            kw.setdefault("stderr", log)
            if zmq.has("curve"):
                kw.setdefault("transport_encryption", "auto")  # plain TCP if the kernel can't
            await super().start_kernel(**kw)

    return LoggedKernelManager


def execute(step: Step, run_dir: Path, log_output: bool = True) -> float:
    """Execute one step with papermill into the run folder; return its wall time.

    The kernel's own process output goes to `logs/<step>.kernel.log` in the run folder.
    """
    import papermill

    output = run_dir / f"{step.name}.ipynb"
    params = {**step.parameters, "RUN_DIR": str(run_dir)}
    # papermill's logger carries the cells' output (streamed when asked) and nbclient's notes,
    # such as "Kernel died while waiting for execute reply." when Ctrl-C stops the kernel;
    # failures reach the user as exceptions (StepFailed's one line). Unstreamed, its records
    # would fall to Python's last-resort handler on stderr.
    handler = _stream_cell_output(step.name) if log_output else _drop_papermill_log()
    printed = {
        "stdout_file": _PrintedLines(logging.INFO),
        "stderr_file": _PrintedLines(logging.WARNING),
    }
    (run_dir / "logs").mkdir(exist_ok=True)
    start = time.perf_counter()
    try:
        with open(run_dir / "logs" / f"{step.name}.kernel.log", "ab") as kernel_log:
            papermill.execute_notebook(
                str(step.source),
                str(output),
                parameters=params,
                kernel_name=KERNEL,
                cwd=str(run_dir),
                progress_bar=False,
                # Streamed: what cells print (`_PrintedLines`), not what they display.
                **(printed if log_output else {}),
                request_save_on_cell_execute=True,
                kernel_manager_class=quiet_kernel_manager(kernel_log),
                extra_arguments=KERNEL_ARGUMENTS,
            )
    except papermill.PapermillExecutionError as exc:
        raise StepFailed(
            f"{step.name} failed in cell [{exc.exec_count}] ({exc.ename}: {exc.evalue}); "
            f"the partly executed notebook is kept at {output}"
        ) from exc
    finally:
        for lines in printed.values():
            lines.close()
        logging.getLogger("papermill").removeHandler(handler)
    return time.perf_counter() - start


def export_slides(run_dir: Path) -> str | None:
    """Export the executed presentation as the run's offline `slides.html`, if it ran."""
    from fmnist_lib import slides

    executed = run_dir / f"{slides.PRESENTATION}.ipynb"
    if not executed.is_file():
        return None
    deck = slides.export_deck(executed, run_dir / slides.DECK_FILE)
    log.info("fmnist: slides -> %s", deck)
    slides.export_pdf(deck)  # slides.pdf beside it, or one line saying why not
    return deck.name


def run_pipeline(
    profile: str | None,
    overrides: dict[str, Any] | None = None,
    models: list[str] | None = None,
    runs_root: Path | None = None,
    resume: Path | None = None,
    log_output: bool = True,
    notebooks: list[str] | None = None,
    run_dir: Path | None = None,
) -> Path:
    """Validate, then execute every step; return the run folder.

    With `resume`, finish a killed, failed or interrupted run in its own folder, re-planned
    from its `run.json`: steps recorded as done are skipped and training continues from its
    last checkpoint. `run_dir` runs into that folder instead of a fresh one (a sweep names one
    per point); `notebooks` as in `plan`. One process at a time executes a run folder.
    """
    from fmnist_lib import data

    if resume is not None:
        run_dir = Path(resume).resolve()
        record = read_record(run_dir)
        profile, overrides, models, notebooks = resumed_request(
            record, profile, overrides, models, notebooks
        )
    profile = profile or "default"
    steps = plan(profile, overrides, models, notebooks)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # kernels inherit: hide C++ log noise
    provenance = data.load_fashion_mnist().provenance()  # fail before any notebook runs
    if resume is None:
        if run_dir is None:
            run_dir = new_run_dir(profile, runs_root)
        else:
            run_dir = Path(run_dir).resolve()
            if (run_dir / "run.json").exists():
                raise ParameterError(f"{run_dir} already holds a run: resume it instead")
            (run_dir / "figures").mkdir(parents=True, exist_ok=True)
    with run_lock(run_dir):
        if resume is not None:
            record = read_record(run_dir)  # again, now that no other process can write it
            for step in steps:
                if step.notebook == TRAINING:
                    step.parameters["RESUME"] = True
            record["parameters"] = {s.name: effective_parameters(s) for s in steps}
            record.setdefault("resumed", []).append(
                {"at": dt.datetime.now().isoformat(timespec="seconds"), "pid": os.getpid()}
            )
        else:
            record = {
                "run_id": run_dir.name,
                "profile": profile,
                "command": sys.argv,
                "overrides": overrides or {},
                "models": models,
                "notebooks": notebooks,
                "started": dt.datetime.now().isoformat(timespec="seconds"),
                "status": "running",
                "parameters": {s.name: effective_parameters(s) for s in steps},
                "data": provenance,
                **records.environment_record(),
                "steps": [],
            }
        execute_steps(steps, run_dir, record, log_output)
    return run_dir


def write_record_anyhow(path: Path, record: dict[str, Any]) -> bool:
    """Write `record` atomically, else (a full disk has no room for the temporary file) over
    the old file in place; False when neither works."""
    try:
        records.write_json(path, record)
        return True
    except OSError:
        pass
    try:
        with path.open("r+") as fh:
            fh.truncate(0)  # frees the old blocks for the new text
            json.dump(record, fh, indent=2, default=str)
            fh.write("\n")
        return True
    except OSError as exc:
        log.warning("fmnist: %s: cannot record the failure (%s)", path, exc.strerror or exc)
        return False


def execute_steps(
    steps: list[Step], run_dir: Path, record: dict[str, Any], log_output: bool
) -> None:
    """Execute the steps not yet done, keeping `run.json` up to date after each change.

    An OS error (a full disk, a folder gone) anywhere on the way is recorded: the step and the
    run `failed`, with the error, and raised as a one-line `RunError`.
    """
    path = run_dir / "run.json"
    done = {s["name"] for s in record["steps"] if s["status"] == "done"}
    record.update(status="running", pid=os.getpid())
    record.pop("failed_step", None)
    record.pop("interrupted_step", None)
    record.pop("error", None)
    record["steps"] = [s for s in record["steps"] if s["name"] in done]
    earlier = sum(s.get("seconds", 0.0) for s in record["steps"])  # steps of earlier sessions
    total = time.perf_counter()
    entry: dict[str, Any] = {}
    try:
        records.write_json(path, record)
        log.info("fmnist: run folder %s", run_dir)
        for i, step in enumerate(steps, 1):
            if step.name in done:
                log.info("[%d/%d] %s: already done, skipped", i, len(steps), step.name)
                continue
            log.info("[%d/%d] %s: running %s", i, len(steps), step.name, step.parameters)
            entry = {"name": step.name, "notebook": f"{step.name}.ipynb", "status": "running"}
            record["steps"].append(entry)
            records.write_json(path, record)
            try:
                entry["seconds"] = round(
                    execute(step, run_dir, log_output and step.notebook == TRAINING), 2
                )
            except StepFailed as exc:
                entry.update(status="failed", error=str(exc))
                record.update(status="failed", failed_step=step.name)
                records.write_json(path, record)
                raise
            except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (`Terminated`)
                entry["status"] = "interrupted"
                record.update(status="interrupted", interrupted_step=step.name)
                records.write_json(path, record)
                raise type(exc)(
                    f"{step.name} was running; finish the run with --resume {run_dir}"
                ) from None
            entry["status"] = "done"
            records.write_json(path, record)
            log.info("[%d/%d] %s: done in %.1f s", i, len(steps), step.name, entry["seconds"])
        record["slides"] = export_slides(run_dir)
        record.update(
            status="done",
            finished=dt.datetime.now().isoformat(timespec="seconds"),
            seconds=round(earlier + time.perf_counter() - total, 2),
        )
        records.write_json(path, record)
    except OSError as exc:
        name = entry["name"] if entry.get("status") == "running" else None
        where = f" ({exc.filename})" if exc.filename else ""
        error = f"{name or 'the run'} stopped by an OS error: {exc.strerror or exc}{where}"
        record.update(status="failed", error=error)
        if name:
            entry.update(status="failed", error=error)
            record["failed_step"] = name
        saved = write_record_anyhow(path, record)
        raise RunError(
            f"{error}; "
            + (f"recorded in {path}" if saved else f"{path} could not be updated")
            + f"; fix it, then finish the run with --resume {run_dir}"
        ) from None
    from fmnist_lib import catalog  # it reads run folders, and imports this module

    log.info("\n".join(catalog.summary_lines(run_dir, record)))
