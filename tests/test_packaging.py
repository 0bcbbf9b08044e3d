"""Every package folder is installed under the casebridge name, with its data files."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def declared() -> tuple[dict[str, str], list[str]]:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return config["package-dir"], config["packages"]


def package_folders() -> set[str]:
    mapping, _ = declared()
    found = set()
    for top, folder in mapping.items():
        root = REPO_ROOT / folder
        for init in root.rglob("__init__.py"):
            rel = init.parent.relative_to(root)
            found.add(".".join([top, *rel.parts]) if rel.parts else top)
    return found


def test_every_package_folder_is_declared() -> None:
    _, packages = declared()
    missing = package_folders() - set(packages)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"


def test_bare_top_level_names_are_not_importable_as_casebridge_parts() -> None:
    import casebridge.adapters
    import casebridge.canonical_model

    assert casebridge.adapters.__name__ == "casebridge.adapters"
    assert casebridge.canonical_model.__name__ == "casebridge.canonical_model"


@pytest.mark.slow
def test_wheel_contains_every_package_and_its_data(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(REPO_ROOT)],
        check=True, capture_output=True,
    )
    wheel = next(tmp_path.glob("casebridge-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for package in package_folders():
        assert f"{package.replace('.', '/')}/__init__.py" in names, package
    mapping, _ = declared()
    for folder in mapping.values():
        for data in (REPO_ROOT / folder).rglob("*"):
            if data.suffix in {".xsd", ".ini", ".mako"} or data.name.endswith(".schema.json"):
                assert any(n.endswith(data.name) for n in names), data.name
    assert "casebridge/gateway/demo/samples/jobcenter/zuweisung-001.xml" in names
