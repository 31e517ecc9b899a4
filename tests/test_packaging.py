"""Installing anywhere: one Keras backend per platform (pyproject.toml's markers, resolved
against the package index), JAX chosen where TensorFlow is missing (config.choose_backend), and
a wheel that ships the slide deck's static files and refuses clearly what needs a clone."""

from __future__ import annotations

import email.parser
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from fmnist_lib import config

BACKENDS = {"tensorflow", "tensorflow-cpu", "jax"}


def installed_on(sys_platform: str, machine: str, python: str = "3.11") -> dict[str, str]:
    """The base dependencies pyproject.toml installs on a platform: name -> pinned version."""
    project = tomllib.loads((config.PROJ_ROOT / "pyproject.toml").read_text())["project"]
    env = {"sys_platform": sys_platform, "platform_machine": machine, "python_version": python}
    chosen = {}
    for line in project["dependencies"]:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(env):
            (spec,) = req.specifier
            chosen[req.name] = spec.version
    return chosen


@pytest.mark.parametrize(
    ("sys_platform", "machine", "python", "backend"),
    [
        ("linux", "x86_64", "3.11", "tensorflow-cpu"),
        ("win32", "AMD64", "3.13", "tensorflow-cpu"),
        ("darwin", "arm64", "3.11", "tensorflow"),
        ("linux", "aarch64", "3.12", "tensorflow"),
        ("darwin", "x86_64", "3.11", "jax"),
        ("win32", "ARM64", "3.11", "jax"),
        ("linux", "ppc64le", "3.11", "jax"),
        ("freebsd14", "amd64", "3.11", "jax"),
        ("linux", "x86_64", "3.14", "jax"),  # TensorFlow 2.21.0 has no CPython 3.14 wheels
        ("darwin", "arm64", "3.14", "jax"),
    ],
)
def test_each_platform_installs_exactly_one_keras_backend(sys_platform, machine, python, backend):
    chosen = installed_on(sys_platform, machine, python)
    assert BACKENDS & chosen.keys() == {backend}
    if backend == "jax":
        assert chosen["jaxlib"] == chosen["jax"]
    else:
        assert "jaxlib" not in chosen


# pip evaluates markers for the machine it runs on even with --platform, so the test evaluates
# them for the target and hands pip the chosen pins; pip then checks that wheels exist.
TARGETS = {
    "macos-arm64": ("darwin", "arm64", ["macosx_14_0_arm64"]),
    "linux-aarch64": (
        "linux",
        "aarch64",
        [f"manylinux_2_{minor}_aarch64" for minor in range(17, 29)] + ["manylinux2014_aarch64"],
    ),
}
NETWORK_ERRORS = (
    "NewConnectionError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "Max retries exceeded",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "ProxyError",
    "Could not fetch URL",
)


@pytest.mark.network
@pytest.mark.parametrize("target", TARGETS)
def test_pip_resolves_every_dependency_with_a_backend(target, tmp_path):
    sys_platform, machine, tags = TARGETS[target]
    pins = [f"{name}=={version}" for name, version in installed_on(sys_platform, machine).items()]
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed"]
    command += ["--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp"]
    command += [arg for tag in tags for arg in ("--platform", tag)]
    command += ["--timeout", "15", "--retries", "1", "--report", str(report), *pins]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    except subprocess.TimeoutExpired:
        pytest.skip("package index unreachable: pip did not finish within 300 s")
    failed = [line for line in proc.stderr.splitlines() if any(e in line for e in NETWORK_ERRORS)]
    if proc.returncode and failed:
        pytest.skip(f"package index unreachable: {failed[0].strip()[:160]}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert BACKENDS & names, f"{target}: no Keras backend among {sorted(names)}"
    assert "keras" in names


def test_choose_backend_picks_jax_where_tensorflow_is_missing(monkeypatch):
    # A private environment: choose_backend writes to it, and nothing it sets may reach the
    # kernels that later tests start (a leaked KERAS_BACKEND=jax retrains 03 on JAX).
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    monkeypatch.setattr(os, "environ", env)
    monkeypatch.delitem(sys.modules, "keras", raising=False)
    present = {"jax"}
    monkeypatch.setattr(config, "find_spec", lambda name: object() if name in present else None)
    assert config.choose_backend() == "jax"
    assert env["KERAS_BACKEND"] == "jax"

    del env["KERAS_BACKEND"]
    present.add("tensorflow")
    assert config.choose_backend() == "tensorflow"
    assert "KERAS_BACKEND" not in env

    present.discard("tensorflow")
    env["KERAS_BACKEND"] = "tensorflow"  # the user's choice wins
    assert config.choose_backend() == "tensorflow"


def test_the_cli_sets_jax_for_its_kernels_when_tensorflow_cannot_be_imported():
    code = (
        "import os, sys; sys.modules['tensorflow'] = None\n"  # as if TensorFlow were missing
        "import fmnist_lib.__main__\n"  # what `python -m fmnist_lib` imports before any work
        "print(os.environ.get('KERAS_BACKEND'), 'keras' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["jax", "False"]  # set in time: Keras not yet imported


def test_require_clone_names_the_missing_folder_and_the_remedy(monkeypatch, tmp_path):
    assert config.require_clone() == config.PROJ_ROOT
    monkeypatch.setattr(config, "PARAMS_DIR", tmp_path / "params")
    with pytest.raises(config.CloneRequired, match="FMNIST_PROJECT_DIR") as info:
        config.require_clone()
    assert str(tmp_path / "params") in str(info.value)


def test_pipeline_refuses_outside_a_clone_before_reading_a_profile(monkeypatch, tmp_path, capsys):
    # What a sweep point meets on a Dask worker without the clone: one clear line, exit 1.
    from fmnist_lib import pipeline

    monkeypatch.setattr(config, "NOTEBOOKS_DIR", tmp_path / "notebooks")
    with pytest.raises(config.CloneRequired) as info:
        pipeline.plan("smoke")
    assert pipeline.exit_code(info.value) == 1
    assert capsys.readouterr().err.startswith(f"fmnist: error: {tmp_path / 'notebooks'}")


@pytest.fixture(scope="module")
def wheel_site(tmp_path_factory) -> Path:
    """fmnist_lib built as a wheel (no build isolation: offline) and installed into a folder."""
    pytest.importorskip("setuptools")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # a copy, so the build leaves no build/ or egg-info in the tree
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(config.PROJ_ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(config.PACKAGE_DIR, src / "fmnist_lib", ignore=ignore)
    pip = [sys.executable, "-m", "pip", "--quiet"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(src)],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp / "dist").glob("fmnist-*.whl")
    site = tmp / "site"
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    return site


def run_installed(site: Path, cwd: Path, *args: str, project: Path | None = None):
    """`python -m fmnist_lib ARGS` from the installed wheel, the source tree off sys.path."""
    env = {k: v for k, v in os.environ.items() if k not in ("FMNIST_PROJECT_DIR", "PYTHONPATH")}
    env["PYTHONPATH"] = str(site)
    if project is not None:
        env["FMNIST_PROJECT_DIR"] = str(project)
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=env, check=False
    )


def test_wheel_ships_the_static_files(wheel_site):
    static = config.PACKAGE_DIR / "static"
    expected = {p.relative_to(static) for p in static.rglob("*") if p.is_file()}
    shipped = wheel_site / "fmnist_lib" / "static"
    assert expected
    assert {p.relative_to(shipped) for p in shipped.rglob("*") if p.is_file()} == expected


def test_wheel_carries_the_mit_licence(wheel_site):
    (info,) = wheel_site.glob("fmnist-*.dist-info")
    metadata = email.parser.Parser().parsestr((info / "METADATA").read_text())
    assert metadata["License"] == "MIT"
    (licence,) = info.rglob("LICENSE")
    assert licence.read_text() == (config.PROJ_ROOT / "LICENSE").read_text()


def test_citation_file_names_this_package_and_the_data_set():
    """CITATION.cff (CFF 1.2.0) says what pyproject.toml says, and cites Fashion-MNIST."""
    project = tomllib.loads((config.PROJ_ROOT / "pyproject.toml").read_text())["project"]
    cff = yaml.safe_load((config.PROJ_ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    assert cff["message"] and cff["title"].startswith(project["name"]) and cff["authors"]
    assert cff["version"] == project["version"]
    assert cff["license"] == project["license"]["text"] == "MIT"
    assert (config.PROJ_ROOT / "LICENSE").read_text().startswith("MIT License\n")
    (dataset,) = cff["references"]
    assert [a["family-names"] for a in dataset["authors"]] == ["Xiao", "Rasul", "Vollgraf"]
    assert dataset["year"] == 2017 and dataset["license"] == "MIT"
    assert {"type": "other", "value": "arXiv:1708.07747"}.items() <= dataset["identifiers"][
        0
    ].items()


def test_wheel_outside_a_clone_refuses_params_and_names_the_remedy(wheel_site, tmp_path):
    code = "import fmnist_lib.slides as s; print(s.__file__); print(s.TEMPLATE_DIR.is_dir())"
    where = run_installed(wheel_site, tmp_path, "-c", code)
    assert where.stdout.split() == [str(wheel_site / "fmnist_lib" / "slides.py"), "True"]

    refused = run_installed(wheel_site, tmp_path, "-m", "fmnist_lib", "params")
    assert refused.returncode == 1, refused.stderr
    message = refused.stderr.strip()
    assert message.startswith("fmnist: params: ") and "\n" not in message
    assert str(wheel_site / "notebooks") in message and "FMNIST_PROJECT_DIR" in message

    pointed = run_installed(
        wheel_site, tmp_path, "-m", "fmnist_lib", "params", project=config.PROJ_ROOT
    )
    assert pointed.returncode == 0, pointed.stderr
    assert "EPOCHS" in pointed.stdout
