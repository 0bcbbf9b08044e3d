"""Every package folder is installed under the casebridge name, with its data files."""

from __future__ import annotations

import shutil
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


def _fresh_venv(where: Path) -> Path:
    """A new virtual environment whose dependencies come from this one (no downloads): a .pth
    file appends a folder of links to this environment's site-packages, less casebridge itself.
    casebridge must not be reachable there: an editable install's finder comes after the path
    entries, so a casebridge installed plainly in this environment would shadow it."""
    import sysconfig
    import venv

    venv.EnvBuilder(with_pip=False).create(where)
    python = where / "bin" / "python"
    where_purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    own = subprocess.run([str(python), "-c", where_purelib], check=True, capture_output=True,
                         text=True).stdout.strip()
    deps = where.with_name(f"{where.name}-deps")
    deps.mkdir()
    for entry in Path(sysconfig.get_path("purelib")).iterdir():
        if not entry.name.lower().startswith(("casebridge", "__editable__")):
            (deps / entry.name).symlink_to(entry)
    (Path(own) / "_deps_from_test_env.pth").write_text(f"{deps}\n")
    return python


def _pip(python: Path, *args: str) -> None:
    # the test environment's pip, installing into the fresh environment
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-build-isolation", "--disable-pip-version-check", *args],
                   check=True, capture_output=True, timeout=300)


def _works_from(python: Path, root: Path) -> str:
    """From the clone's root: the CLI starts and every built-in adapter is registered; returns
    where casebridge.gateway was imported from."""
    check = ("import casebridge, casebridge.gateway; from casebridge.adapters.registry import "
             "systems; print(casebridge.gateway.__file__); print(','.join(systems()))")
    proc = subprocess.run([str(python), "-c", check], cwd=root, capture_output=True, text=True,
                          check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    location, found = proc.stdout.split()
    assert found == "jobcenter,jugendamt,provider-fhir,sozialamt"
    helped = subprocess.run([str(python), "-m", "casebridge", "--help"], cwd=root,
                            capture_output=True, text=True, check=False, timeout=120)
    assert helped.returncode == 0 and "translate" in helped.stdout, helped.stderr[-2000:]
    return location


@pytest.mark.slow
def test_plain_and_editable_installs_work_from_the_clone_root(tmp_path: Path) -> None:
    # plain: the wheel, run from the repository's root (whose folders must not shadow it)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(wheels), str(REPO_ROOT)], check=True, capture_output=True)
    plain = _fresh_venv(tmp_path / "plain")
    _pip(plain, str(next(wheels.glob("casebridge-*.whl"))))
    assert "site-packages" in _works_from(plain, REPO_ROOT)
    # editable: a copy of the tracked files, installed with -e, run from the copy's root
    clone = tmp_path / "clone"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, check=True,
                             capture_output=True).stdout.decode().split("\0")
    for name in filter(None, tracked):
        target = clone / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    editable = _fresh_venv(tmp_path / "editable")
    _pip(editable, "-e", str(clone))
    assert _works_from(editable, clone).startswith(str(clone))
