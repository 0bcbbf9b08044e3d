"""``casebridge translate`` and the adapter registry, through the real CLI entry point."""

from __future__ import annotations

import json

import pytest

from casebridge.adapters import get_adapter
from casebridge.adapters.registry import adapter_class
from casebridge.errors import UnknownSystem
from casebridge.gateway.demo import sample_bytes
from casebridge.settings import get_settings
from tests.conftest import SAMPLES


@pytest.fixture
def files(tmp_path, sample):
    def write(name: str, data: bytes | None = None) -> str:
        path = tmp_path / f"{name}.xml"
        path.write_bytes(sample(name) if data is None else data)
        return str(path)

    return write


def test_registry_resolves_the_xml_systems() -> None:
    jc, sa = adapter_class("jobcenter"), adapter_class("sozialamt")
    assert (jc.__name__, jc.system, jc.agency_kind) == (
        "JobcenterAdapter",
        "jobcenter",
        "jobcenter",
    )
    assert (sa.__name__, sa.system, sa.agency_kind) == (
        "SozialamtAdapter",
        "sozialamt",
        "social_office",
    )
    assert get_adapter("sozialamt", max_bytes=10).max_bytes == 10
    with pytest.raises(UnknownSystem, match="did you mean 'jobcenter'"):
        get_adapter("jobcentre")


@pytest.mark.parametrize("name", ["zuweisung", "rueckmeldung"])
def test_jobcenter_sample_to_canonical(run_cli, files, name) -> None:
    result = run_cli("translate", "--from", "jobcenter", files(name))
    assert result.exit_code == 0, result.stderr
    envelope = json.loads(result.stdout)
    assert isinstance(envelope, dict) and envelope["source_system"] == "jobcenter"


def test_several_messages_print_a_json_array(run_cli, files, sample) -> None:
    raw = sample("fallmitteilung")
    start = raw.index(b"  <Fallmitteilung ")
    end = raw.index(b"</Fallmitteilungen>")
    second = raw[start:end].replace(b'id="SA-DU-50-2026-0457"', b'id="SA-2"')
    result = run_cli("translate", "--from", "sozialamt", files("x", raw[:end] + second + raw[end:]))
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert [e["message_id"] for e in data] == ["SA-DU-50-2026-0457", "SA-2"]


def test_stdin_and_native_output(run_cli, sample, tmp_path) -> None:
    out = tmp_path / "out.xml"
    result = run_cli(
        "translate",
        "--from",
        "jobcenter",
        "--to",
        "sozialamt",
        "-o",
        str(out),
        "-",
        stdin=sample("zuweisung"),
    )
    assert result.exit_code == 0, result.stderr
    (env,) = get_adapter("sozialamt").parse(out.read_bytes())
    assert env.message_id == "JC-DU-2026-000123"


def test_native_output_to_stdout(run_cli, files) -> None:
    result = run_cli(
        "translate", "--from", "sozialamt", "--to", "jobcenter", files("fallmitteilung")
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("<?xml version='1.0' encoding='UTF-8'?>")
    assert '<jc:Zweck schluessel="FK"/>' in result.stdout


def test_bad_input_one_line_per_problem_naming_file_and_line(run_cli, files, sample) -> None:
    raw = (
        sample("zuweisung")
        .replace(b"1988-04-12", b"1988-13-12")
        .replace(b'schluessel="ZUW"', b'schluessel="QQ"')
    )
    path = files("bad", raw)
    result = run_cli("translate", "--from", "jobcenter", path)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"casebridge: {path}:line 9: Element 'Zweck'")
    assert lines[1].startswith(f"casebridge: {path}:line 18: Element 'Geburtsdatum'")
    assert "Traceback" not in result.stderr and "1988-13-12" not in result.stderr


def test_truncated_file(run_cli, files, sample) -> None:
    path = files("cut", sample("fallmitteilung")[:700])
    result = run_cli("translate", "--from", "sozialamt", path)
    assert result.exit_code == 2
    assert all(
        line.startswith(f"casebridge: {path}:line ") for line in result.stderr.strip().splitlines()
    )


def test_unknown_system_suggests(run_cli, files) -> None:
    result = run_cli("translate", "--from", "sozialamtt", files("fallmitteilung"))
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == "casebridge: unknown system 'sozialamtt'; did you mean 'sozialamt'?"
    )
    result = run_cli(
        "translate", "--from", "sozialamt", "--to", "jobcentr", files("fallmitteilung")
    )
    assert "did you mean 'jobcenter'" in result.stderr and result.exit_code == 2


def test_missing_file(run_cli, tmp_path) -> None:
    missing = str(tmp_path / "nope.xml")
    result = run_cli("translate", "--from", "jobcenter", missing)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"casebridge: {missing}: No such file or directory"


def test_unrenderable_names_the_file(run_cli, files) -> None:
    path = files("rueckmeldung")
    result = run_cli("translate", "--from", "jobcenter", "--to", "sozialamt", path)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"casebridge: {path}: rendering for sozialamt: message_type:")


def test_size_limit_comes_from_settings(run_cli, files, monkeypatch) -> None:
    monkeypatch.setenv("CASEBRIDGE_MAX_MESSAGE_BYTES", "500")
    get_settings.cache_clear()
    try:
        path = files("zuweisung")
        result = run_cli("translate", "--from", "jobcenter", path)
        assert result.exit_code == 2
        assert result.stderr.strip() == (
            f"casebridge: {path}: input exceeds the limit of 500 bytes"
        )
        result = run_cli("translate", "--from", "jobcenter", "-", stdin=b"<" * 600)
        assert result.stderr.strip() == "casebridge: <stdin>: input exceeds the limit of 500 bytes"
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize("relative", [v for v in SAMPLES.values() if v.endswith(".xml")])
def test_interface_samples_round_trip_from_a_file(run_cli, tmp_path, relative) -> None:
    path = tmp_path / relative.replace("/", "-")
    path.write_bytes(sample_bytes(relative))
    system = relative.split("/")[0]
    result = run_cli("translate", "--from", system, "--to", system, "-o", "/dev/null", str(path))
    assert result.exit_code == 0, result.stderr
