"""environment.yml (conda) and pyproject.toml (pip) pin the same packages at the same versions."""

from __future__ import annotations

import re
import tomllib

import yaml

from fmnist_lib.config import PROJ_ROOT


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((PROJ_ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    pins = {}
    for req in reqs:
        spec = req.split(";")[0].strip()
        name, _, version = spec.partition("==")
        assert version, f"pyproject.toml: {req!r} is not pinned with =="
        pins[name.strip().lower()] = version.strip()
    return pins


def conda_pins() -> dict[str, str]:
    env = yaml.safe_load((PROJ_ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge", "nodefaults"]
    pins = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            assert dep == {"pip": ["-e ."]}, dep
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:=([^=\s]+))?", dep)
        assert match, dep
        if match[1] not in ("python", "pip"):
            assert match[2], f"environment.yml: {dep!r} is not pinned"
            pins[match[1].lower()] = match[2]
    return pins


def test_same_packages_same_versions():
    assert conda_pins() == pyproject_pins()


def test_every_conda_dependency_says_why():
    lines = (PROJ_ROOT / "environment.yml").read_text().splitlines()
    pinned = [ln for ln in lines if re.match(r"\s+- [a-z].*=\d", ln)]
    assert pinned and all("  # " in ln for ln in pinned)
