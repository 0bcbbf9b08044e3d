"""The container image's build file: hadolint clean, and built the way the issue asks."""

from __future__ import annotations

import re
import subprocess
import tomllib

from tests.deploy.conftest import DEPLOY, REPO, venv_tool

DOCKERFILE = DEPLOY / "Dockerfile"


def _stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined), split by FROM."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [venv_tool("hadolint"), "--config", str(DEPLOY / ".hadolint.yaml"), str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_config_fails_on_everything_and_ignores_nothing() -> None:
    import yaml

    config = yaml.safe_load((DEPLOY / ".hadolint.yaml").read_text())
    assert config["failure-threshold"] == "info"
    assert config.get("ignored", []) == []


def test_hadolint_really_fails_on_a_bad_dockerfile(tmp_path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install requests\nUSER root\n")
    result = subprocess.run(
        [venv_tool("hadolint"), "--config", str(DEPLOY / ".hadolint.yaml"), str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "DL3006" in result.stdout  # untagged base image
    assert "DL3013" in result.stdout  # unpinned pip install


def test_multi_stage_final_slim_non_root_with_healthcheck() -> None:
    stages = _stages()
    assert len(stages) >= 2, "a builder stage and a runtime stage"
    final = stages[-1]
    base = final[0].split()[1]
    assert re.fullmatch(r"python:3\.11[\w.-]*-slim[\w.-]*", base), base
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert int(users[-1].split(":")[0]) >= 10000  # outside any host's system/user uid range
    healthchecks = [line for line in final if line.upper().startswith("HEALTHCHECK ")]
    assert healthchecks and "python" in healthchecks[-1] and "curl" not in healthchecks[-1]
    assert any(line.startswith("ENTRYPOINT") and "casebridge" in line for line in final)


def test_no_build_tools_in_the_final_stage() -> None:
    final = " ".join(_stages()[-1])
    for tool in ("gcc", "build-essential", "apt-get install", "make ", "git "):
        assert tool not in final, tool
    # Wheels come from the builder through a bind mount (no layer), and pip leaves afterwards.
    assert "--mount=type=bind,from=builder" in final
    assert "--no-index" in final
    assert "pip uninstall" in final


def test_image_copies_every_package_folder() -> None:
    """A new top-level package folder that is not copied would be missing from the image."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    folders = set(pyproject["tool"]["setuptools"]["package-dir"].values())
    builder = " ".join(_stages()[0])
    copied = set(re.findall(r"COPY (\S+) \./", builder))
    assert folders <= copied, folders - copied


def test_dockerignore_beside_the_dockerfile_keeps_secrets_out() -> None:
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    assert next(line for line in ignore if not line.startswith("#")) == "**"
    assert "deploy/secrets/" in ignore
    assert "**/.env" in ignore
