"""Command line: `python -m fmnist_lib run --profile NAME [-p KEY VALUE ...]`, `sweep --grid`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: hide C++ logs

from fmnist_lib import config, pipeline  # noqa: E402
from fmnist_lib.parameters import ParameterError  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """The `fmnist` argument parser."""
    parser = argparse.ArgumentParser(prog="python -m fmnist_lib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute the notebooks in order into runs/<run-id>/")
    run.add_argument(
        "--profile",
        help="params/NAME.yaml (default: default; with --resume, the run's own profile)",
    )
    run.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "VALUE"),
        help="override a parameter in every notebook that declares it",
    )
    run.add_argument("--models", help="comma-separated subset of the profile's training runs")
    run.add_argument(
        "--notebooks", help="comma-separated subset of the notebooks (e.g. 02_preprocessing)"
    )
    run.add_argument("--runs-dir", type=Path, help="parent folder of run folders (default runs/)")
    run.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="finish a killed, failed or interrupted run, as recorded in its run.json",
    )
    run.add_argument("--quiet", action="store_true", help="do not stream cell output")

    check = sub.add_parser("check", help="validate a profile and overrides, execute nothing")
    check.add_argument("--profile", default="default")
    check.add_argument("-p", "--parameter", nargs=2, action="append", default=[])

    sweep = sub.add_parser("sweep", help="run a grid of pipeline runs on Dask")
    sweep.add_argument("--grid", type=Path, required=True, help="params/sweeps/NAME.yaml")
    sweep.add_argument("--scheduler", metavar="ADDRESS", help="tcp://HOST:PORT of a Dask cluster")
    sweep.add_argument("--workers", type=int, help="LocalCluster processes (default: CPU count)")
    sweep.add_argument("--sweeps-dir", type=Path, help="parent of sweep folders (runs/sweeps/)")
    sweep.add_argument("--no-report", action="store_true", help="skip 06_sweep_results")

    params = sub.add_parser(
        "params", help="list every notebook parameter with its type and default"
    )
    params.add_argument(
        "--profile", metavar="NAME", help="show the values params/NAME.yaml runs with instead"
    )

    runs = sub.add_parser("runs", help="list recent runs: status, wall time, best model")
    runs.add_argument("--runs-dir", type=Path, help="parent folder of run folders (default runs/)")
    runs.add_argument("--json", action="store_true", help="print JSON, for scripts")
    runs.add_argument("--limit", type=int, default=20, help="newest N runs (0: all; default 20)")

    ref = sub.add_parser(
        "reference", help="make a finished run the committed reference (reports/reference_run)"
    )
    which = ref.add_mutually_exclusive_group(required=True)
    which.add_argument("run_dir", nargs="?", type=Path, help="runs/<id> of a finished run")
    which.add_argument("--latest", action="store_true", help="the newest finished run in runs/")

    board = sub.add_parser(
        "tensorboard", help="serve a run's training logs in TensorBoard and print the URL"
    )
    board.add_argument(
        "run", metavar="RUN", help="runs/<id>, a run id as `runs` lists it, or `latest`"
    )
    board.add_argument("--runs-dir", type=Path, help="where run ids are looked up (runs/)")
    board.add_argument("--port", type=int, default=6006, help="0: any free port (default 6006)")
    board.add_argument("--host", default="localhost", help="address to serve on (localhost)")

    data = sub.add_parser("data", help="find and verify the data files; exit 1 if unusable")
    data.add_argument("--quiet", action="store_true", help="print nothing on success")

    predict = sub.add_parser("predict", help="classify image files with a run's saved model")
    predict.add_argument(
        "--run",
        required=True,
        metavar="RUN",
        help="runs/<id>, a run id as `runs` lists it, or `latest` (the newest finished run)",
    )
    predict.add_argument("--runs-dir", type=Path, help="where run ids are looked up (runs/)")
    predict.add_argument("--model", help="models/NAME in the run (default: the run's best)")
    predict.add_argument("--out", type=Path, metavar="FILE.csv", help="write here, not stdout")
    predict.add_argument(
        "--report", type=Path, metavar="FILE.json", help="write conversions and drift warnings"
    )
    predict.add_argument(
        "--prepare",
        choices=("auto", "photo", "none"),
        default="auto",
        help="pictures: convert those not in the data set's form (auto), convert every one as "
        "a product photo (photo), or refuse those that need converting (none)",
    )
    predict.add_argument(
        "files", nargs="+", metavar="FILE", help="IDX images (.gz or raw), CSV, PNG or JPEG"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (2 for invalid parameters)."""
    args = build_parser().parse_args(argv)
    # Progress (fmnist_lib's log lines) on stdout as plain lines; `run --quiet` hides only
    # the notebooks' cell output, not these.
    config.log_to_console()
    if args.command in ("params", "check", "run", "sweep", "reference"):
        try:
            config.require_clone()  # these read notebooks/ and params/, which a wheel lacks
        except config.CloneRequired as exc:
            print(f"fmnist: {args.command}: {exc}", file=sys.stderr)
            return 1
    if args.command == "params":
        from fmnist_lib import parameters

        if args.profile is None:
            print(parameters.describe(config.NOTEBOOKS))
            return 0
        try:
            print(pipeline.describe_profile(args.profile))
        except ParameterError as exc:
            return pipeline.exit_code(exc)
        return 0
    if args.command == "data":
        return check_data(args.quiet)
    if args.command == "runs":
        return list_runs(args.runs_dir, args.limit, args.json)
    if args.command == "reference":
        return make_reference(args.run_dir, args.latest)
    if args.command == "tensorboard":
        return tensorboard(args.run, args.runs_dir, args.port, args.host)
    overrides = dict(getattr(args, "parameter", []))
    try:
        with pipeline.sigterm_as_interrupt():  # SIGTERM: recorded interrupted, as Ctrl-C
            return run_command(args, overrides)
    except (Exception, KeyboardInterrupt) as exc:  # known failures: one line, no traceback
        code = pipeline.exit_code(exc)
        if code is None:
            raise
        return code


def run_command(args: argparse.Namespace, overrides: dict[str, str]) -> int:
    """`sweep`, `predict`, `check` or `run`; known failures are raised for `main` to print."""
    if args.command == "sweep":
        return run_sweep(args)
    if args.command == "predict":
        from fmnist_lib import predict

        try:
            predict.predict_files(
                args.run,
                args.files,
                args.model,
                args.out,
                args.report,
                args.runs_dir,
                args.prepare,
            )
        except predict.InputErrors as exc:  # every faulty file, one line each
            for fault in exc.faults:
                print(f"fmnist: input error: {fault}", file=sys.stderr)
            return 2
        return 0
    if args.command == "check":
        for step in pipeline.plan(args.profile, overrides):
            print(f"{step.name}: {step.parameters}")
        return 0
    # `--models ''` is an empty list (refused by `plan`), not "every model"
    models = args.models.split(",") if args.models is not None else None
    notebooks = args.notebooks.split(",") if args.notebooks is not None else None
    pipeline.run_pipeline(
        args.profile,
        overrides,
        models=models,
        notebooks=notebooks,
        runs_root=args.runs_dir,
        resume=args.resume,
        log_output=not args.quiet,
    )
    return 0


def run_sweep(args: argparse.Namespace) -> int:
    """Run a sweep; 1 when any point failed (after all have finished)."""
    from fmnist_lib import sweep

    manifest = sweep.run_sweep(
        args.grid, args.scheduler, args.workers, args.sweeps_dir, report=not args.no_report
    )
    failed = [p for p in manifest["points"] if p["status"] != "done"]
    for point in failed:
        print(f"fmnist: point {point['id']} failed: {point['error']}", file=sys.stderr)
    return 1 if failed else 0


def list_runs(runs_dir: Path | None, limit: int, as_json: bool) -> int:
    """Print the recent runs; 1 when the runs folder cannot be read."""
    from fmnist_lib import catalog

    root = (runs_dir or config.runs_dir()).resolve()
    try:
        print(catalog.show_runs(root, limit, as_json))
    except OSError as exc:
        print(f"fmnist: runs: cannot list {root}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def tensorboard(run: str, runs_dir: Path | None, port: int, host: str) -> int:
    """Serve the run's TensorBoard logs until Ctrl-C; 1 without TensorBoard, 2 without logs."""
    import time

    from fmnist_lib import predict, tracking

    try:
        url = tracking.serve_tensorboard(predict.resolve_run(run, runs_dir), port, host)
    except tracking.TensorBoardMissing as exc:
        print(f"fmnist: tensorboard: {exc}", file=sys.stderr)
        return 1
    except ParameterError as exc:
        print(f"fmnist: tensorboard: {exc}", file=sys.stderr)
        return 2
    print(f"==> TensorBoard on {run}; Ctrl-C stops it. Open:\n    {url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0


def make_reference(run_dir: Path | None, latest: bool) -> int:
    """Publish a finished run as the reference and re-execute 04 and 05 against it."""
    from fmnist_lib import reference

    try:
        source = reference.latest_done(config.runs_dir()) if latest else run_dir
        target = reference.publish(source)
    except reference.ReferenceError as exc:
        print(f"fmnist: reference: {exc}", file=sys.stderr)
        return 1
    print(f"==> {source.name} published to {target}")
    for path in reference.refresh_notebooks(target):
        print(f"==> re-executed {path.name} against it (its outputs are the reference run's)")
    return 0


def check_data(quiet: bool) -> int:
    """Locate and verify the local data files without downloading."""
    from fmnist_lib.data import DataError, load_fashion_mnist

    try:
        ds = load_fashion_mnist(allow_download=False)
    except DataError as exc:
        print(f"fmnist: data: {exc}", file=sys.stderr)
        return 1
    if not quiet:
        print(f"fmnist: data from {ds.source}, all checksums verified:")
        for key, info in ds.files.items():
            print(f"  {key:13s} {info.md5}  {info.path}")
    else:
        print(f"==> data found ({ds.source}) and verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
