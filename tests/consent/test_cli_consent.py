"""The consent, clients, decide and audit commands, through the real CLI entry point."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime

import pytest
import yaml

from casebridge.consent.audit import AuditTrail
from casebridge.consent.fhir import parse_consents
from casebridge.consent.gate import ConsentGate
from casebridge.db import get_database
from casebridge.routing.routes import demo_route_table_text
from casebridge.settings import get_settings
from tests.consent.store_fixtures import *  # noqa: F403
from tests.consent.store_fixtures import example_envelope

SELF_ID = "cons-jc-2026-0815"
KUNDE = "urn:casebridge:id:jobcenter-duisburg:kundennummer=962D123456"
AT = "2026-11-20T10:00:00+01:00"


@pytest.fixture
def files(tmp_path, sample):
    """The sample consents and the example envelope as files."""
    paths = {}
    for name in ("consent_self", "consent_guardian"):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_bytes(sample(name))
    paths["envelope"] = tmp_path / "envelope.json"
    paths["envelope"].write_text(example_envelope().model_dump_json())
    paths["zuweisung"] = tmp_path / "zuweisung.xml"
    paths["zuweisung"].write_bytes(sample("zuweisung"))
    return paths


@pytest.fixture
def routes(cli_env, tmp_path, monkeypatch):
    """The pilot region's route table as CASEBRIDGE_ROUTE_TABLE (decide takes the gateway's)."""
    path = tmp_path / "routes.yaml"
    path.write_text(demo_route_table_text(), encoding="utf-8")
    monkeypatch.setenv("CASEBRIDGE_ROUTE_TABLE", str(path))
    get_settings.cache_clear()
    return path


def _client_id(run_cli) -> str:
    shown = run_cli("clients", "show", "--identifier", KUNDE)
    assert shown.exit_code == 0, shown.stderr
    return json.loads(shown.stdout)["client_id"]


def test_import_prints_ids_and_is_idempotent(cli_env, run_cli, files) -> None:
    first = run_cli("consent", "import", str(files["consent_self"]))
    assert first.exit_code == 0, first.stderr
    assert first.stdout.split() == [SELF_ID]
    again = run_cli("consent", "import", str(files["consent_self"]))
    assert again.exit_code == 0 and again.stdout.split() == [SELF_ID]
    assert "1 already on record" in again.stderr


def test_invalid_file_is_refused_whole_with_exit_2(cli_env, run_cli, files, tmp_path) -> None:
    good = json.loads(files["consent_guardian"].read_text())
    bad = json.loads(files["consent_self"].read_text())
    bad["provision"]["code"][0]["coding"][0]["code"] = "horoscope"
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps({"resourceType": "Bundle", "type": "collection",
                                  "entry": [{"resource": good}, {"resource": bad}]}))
    result = run_cli("consent", "import", str(bundle))
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr and "provision.code" in result.stderr
    assert run_cli("consent", "show", "cons-ja-2026-0311").exit_code == 4  # nothing stored
    assert run_cli("consent", "import", str(tmp_path / "missing.json")).exit_code == 2


def test_import_several_files_a_directory_and_a_bundle(cli_env, run_cli, files, tmp_path) -> None:
    both = run_cli("consent", "import", str(files["consent_self"]), str(files["consent_guardian"]))
    assert both.exit_code == 0, both.stderr
    assert both.stdout.split() == [SELF_ID, "cons-ja-2026-0311"]
    assert "recorded 2 consent(s) from 2 file(s)" in both.stderr
    folder = tmp_path / "desk"
    folder.mkdir()
    (folder / "a.json").write_bytes(files["consent_self"].read_bytes())
    (folder / "readme.txt").write_text("not a consent")
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": json.loads(files["consent_guardian"].read_text())}]}
    (folder / "b.json").write_text(json.dumps(bundle))
    again = run_cli("consent", "import", str(folder))
    assert again.exit_code == 0, again.stderr
    assert again.stdout.split() == [SELF_ID, "cons-ja-2026-0311"]  # a.json, then the Bundle
    assert "from 2 file(s), 2 already on record" in again.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = run_cli("consent", "import", str(empty))
    assert refused.exit_code == 2 and "holds no *.json file" in refused.stderr


def test_import_of_several_files_is_all_or_nothing_naming_each_file(
    cli_env, run_cli, files, tmp_path
) -> None:
    bad = json.loads(files["consent_self"].read_text())
    bad["provision"]["code"][0]["coding"][0]["code"] = "horoscope"
    bad_file = tmp_path / "bad.json"
    bad_file.write_text(json.dumps(bad))
    broken = tmp_path / "broken.json"
    broken.write_text('{"resourceType": "Consent", ')
    result = run_cli("consent", "import", str(files["consent_guardian"]), str(bad_file),
                     str(broken))
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert any(line.startswith(f"casebridge: {bad_file}:Consent[{SELF_ID}].provision.code")
               for line in lines), lines
    assert any(str(broken) in line for line in lines), lines
    assert not any(str(files["consent_guardian"]) in line for line in lines)
    assert "Traceback" not in result.stderr
    # the valid file was not imported either
    assert run_cli("consent", "show", "cons-ja-2026-0311").exit_code == 4
    copy = tmp_path / "copy.json"
    copy.write_bytes(files["consent_self"].read_bytes())
    twice = run_cli("consent", "import", str(files["consent_self"]), str(copy))
    assert twice.exit_code == 2
    assert f"{copy}:Consent[{SELF_ID}].id: the id is also used in {files['consent_self']}" in (
        twice.stderr)


def test_changed_content_under_the_same_id_is_a_conflict(cli_env, run_cli, files) -> None:
    assert run_cli("consent", "import", str(files["consent_self"])).exit_code == 0
    changed = json.loads(files["consent_self"].read_text())
    changed["provision"]["purpose"] = [{"system": "urn:casebridge:purpose", "code": "referral"}]
    files["consent_self"].write_text(json.dumps(changed))
    result = run_cli("consent", "import", str(files["consent_self"]))
    assert result.exit_code == 1 and "withdrawal plus a new consent" in result.stderr


def test_export_withdraw_show_list(cli_env, run_cli, files) -> None:
    run_cli("consent", "import", str(files["consent_self"]))
    exported = run_cli("consent", "export", SELF_ID)
    assert exported.exit_code == 0
    (directive,) = parse_consents(exported.stdout.encode(), source="export")
    (original,) = parse_consents(files["consent_self"].read_bytes(), source="file")
    assert directive == original
    withdrawn = run_cli("consent", "withdraw", SELF_ID, "--at", AT, "--by", "Servicecenter")
    assert withdrawn.exit_code == 0, withdrawn.stderr
    shown = json.loads(run_cli("consent", "show", SELF_ID).stdout)
    assert shown["state"] == "withdrawn"
    assert [h["event"] for h in shown["history"]] == ["given", "recorded", "withdrawn"]
    assert shown["history"][-1]["by"] == "Servicecenter"
    assert datetime.fromisoformat(shown["withdrawn_at"]) == datetime.fromisoformat(AT)
    after = json.loads(run_cli("consent", "export", SELF_ID).stdout)
    assert after["status"] == "inactive"
    listed = json.loads(run_cli("consent", "list", "--client", _client_id(run_cli)).stdout)
    assert [c["consent_id"] for c in listed] == [SELF_ID]
    assert run_cli("consent", "withdraw", SELF_ID, "--at", AT).exit_code == 1  # twice
    assert run_cli("consent", "withdraw", SELF_ID, "--at", "yesterday").exit_code == 2
    assert run_cli("consent", "withdraw", SELF_ID, "--at", "2026-11-20T10:00:00").exit_code == 2
    assert run_cli("consent", "show", "nope").exit_code == 4


def test_clients_link_show_candidates(cli_env, run_cli, files) -> None:
    run_cli("consent", "import", str(files["consent_self"]))
    run_cli("consent", "import", str(files["consent_guardian"]))
    client = _client_id(run_cli)
    linked = run_cli("clients", "link", client,
                     "urn:casebridge:id:jugendamt-duisburg:fallnummer", "JA-9")
    assert linked.exit_code == 0 and linked.stdout.startswith("linked")
    shown = json.loads(run_cli("clients", "show", client).stdout)
    assert {"system": "urn:casebridge:id:jugendamt-duisburg:fallnummer", "value": "JA-9"}.items() \
        <= next(i for i in shown["identifiers"] if i["value"] == "JA-9").items()
    son = run_cli("clients", "show", "--identifier",
                  "urn:casebridge:id:jugendamt-duisburg:fallnummer=JA-51-2026-1189")
    other = json.loads(son.stdout)["client_id"]
    conflict = run_cli("clients", "link", other,
                       "urn:casebridge:id:jugendamt-duisburg:fallnummer", "JA-9")
    assert conflict.exit_code == 1
    found = json.loads(run_cli("clients", "candidates", "--name", "Yilmaz, Ayse",
                               "--birth-date", "1988-04-12").stdout)
    assert [c["client_id"] for c in found] == [client]
    assert run_cli("clients", "candidates", "--name", "x", "--birth-date", "12.04.1988"
                   ).exit_code == 2
    assert run_cli("clients", "show").exit_code == 2
    assert run_cli("clients", "show", "c-unknown").exit_code == 4


def test_decide_prints_the_report_and_writes_no_audit(cli_env, routes, run_cli, files) -> None:
    run_cli("consent", "import", str(files["consent_self"]))
    recorded = AuditTrail(get_database(cli_env)).count()  # the import's own entry
    result = run_cli("decide", str(files["envelope"]), "--at", AT)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report == {
        "message_id": "JC-DU-2026-000123",
        "decisions": [{
            "recipient": "suchtberatung-diakonie-du", "outcome": "partial",
            "released": ["addiction", "contact", "identity", "support_plan"],
            "withheld": [{"category": "case_notes", "reason": "category_not_covered"}],
            "consents": [SELF_ID], "legal_basis": None,
        }],
    }
    assert AuditTrail(get_database(cli_env)).count() == recorded == 1
    later = json.loads(run_cli("decide", str(files["envelope"]), "--at",
                               "2027-06-01T00:00:00+02:00").stdout)
    assert later["decisions"][0]["outcome"] == "block"  # consent expired
    assert {w["reason"] for w in later["decisions"][0]["withheld"]} >= {"expired"}


def test_decide_from_a_native_file(cli_env, routes, run_cli, files) -> None:
    run_cli("consent", "import", str(files["consent_self"]))
    result = run_cli("decide", "--from", "jobcenter", str(files["zuweisung"]), "--at", AT)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    (decision,) = json.loads(lines[0])["decisions"]
    assert decision["recipient"] == "suchtberatung-diakonie-du"
    assert "addiction" in decision["released"]
    assert decision["consents"] == [SELF_ID]


def test_decide_follows_the_route_table(cli_env, routes, run_cli, files, tmp_path) -> None:
    run_cli("consent", "import", str(files["consent_self"]))
    # a route table without the job centre's referral route: refused as at the door
    table = yaml.safe_load(routes.read_text(encoding="utf-8"))
    for route in table["routes"]:
        route["purposes"] = [p for p in route["purposes"] if p != "referral"] or ["case_conference"]
    narrow = tmp_path / "narrow.yaml"
    narrow.write_text(yaml.safe_dump(table), encoding="utf-8")
    refused = run_cli("decide", "--from", "jobcenter", str(files["zuweisung"]), "--at", AT,
                      "--routes", str(narrow))
    assert refused.exit_code == 2 and "no route admits" in refused.stderr
    # and a required category of the route blocks the whole transfer (rule 7)
    strict = tmp_path / "strict.yaml"
    strict.write_text(routes.read_text(encoding="utf-8").replace(
        "recipients: [provider]\n    required_categories: [identity]",
        "recipients: [provider]\n    required_categories: [identity, health]"), encoding="utf-8")
    blocked = run_cli("decide", "--from", "jobcenter", str(files["zuweisung"]), "--at", AT,
                      "--routes", str(strict))
    assert blocked.exit_code == 0, blocked.stderr
    (decision,) = json.loads(blocked.stdout)["decisions"]
    assert decision["outcome"] == "block"
    assert {"category": "identity", "reason": "required_category_missing"} in decision["withheld"]


def test_preview_prints_masked_documents_and_is_audited(cli_env, routes, run_cli, files) -> None:
    run_cli("consent", "import", str(files["consent_self"]))
    before = AuditTrail(get_database(cli_env)).count()
    shown = run_cli("preview", "--from", "jobcenter", str(files["zuweisung"]), "--at", AT)
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout.startswith(
        "=== JC-DU-2026-000123 -> suchtberatung-diakonie-du: partial (application/fhir+json)")
    assert "withheld: health (special_category_not_named)" in shown.stdout
    assert '"resourceType": "Bundle"' in shown.stdout
    assert "962D123456" not in shown.stdout and "Yılmaz" not in shown.stdout
    unmasked = run_cli("preview", "--from", "jobcenter", str(files["zuweisung"]), "--at", AT,
                       "--unmasked", "--json")
    (report,) = [json.loads(line) for line in unmasked.stdout.splitlines()]
    assert "962D123456" in report["recipients"][0]["document"]
    trail = AuditTrail(get_database(cli_env))
    previews = [e for e in trail.entries() if e.seq > before]
    assert [(e.kind, e.details["requested_by"]) for e in previews] == [
        ("preview", "cli"), ("preview", "cli:unmasked")]
    assert run_cli("preview", str(files["zuweisung"])).exit_code == 2  # --from is required


def test_decide_bad_input_is_one_line_exit_2(cli_env, routes, run_cli, files, tmp_path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"message_id": ')
    for args in (
        ("decide", str(broken)),
        ("decide", str(files["envelope"]), "--at", "noon"),
        ("decide", "--from", "jobcentre", str(files["zuweisung"])),
        ("decide", "--from", "jobcenter", str(files["envelope"])),
    ):
        result = run_cli(*args)
        assert result.exit_code == 2, args
        assert "Traceback" not in result.stderr and result.stderr.startswith("casebridge:")


def _fill_audit(url: str) -> str:
    db = get_database(url)
    gate = ConsentGate(db)
    at = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    envelope = example_envelope(recipients=["suchtberatung-diakonie-du", "sozialamt-duisburg"])
    for _ in range(3):
        result = gate.check(envelope, at=at, stage="inbound")
    return str(result.client_id)


def test_audit_verify_report_export(cli_env, run_cli, files) -> None:
    run_cli("consent", "import", str(files["consent_self"]))
    client = _fill_audit(cli_env)
    ok = run_cli("audit", "verify", "--batch", "2")
    # the import's consent_recorded entry (at the real time) and six decisions of 2026-11-20
    assert ok.exit_code == 0 and "7 entries verified" in ok.stdout
    assert "verified 7 of 7 entries" in ok.stderr  # progress lines when not on a terminal
    report = json.loads(run_cli("audit", "report", "--client", client).stdout)
    sent = [t for t in report["transfers"] if t["state"] != "not_transferred"]
    assert {t["recipient"] for t in sent} == {"suchtberatung-diakonie-du"}
    assert sent[0]["released"] == ["addiction", "contact", "identity", "support_plan"]
    assert sent[0]["consents"] == [SELF_ID] and sent[0]["purpose"] == "referral"
    assert all(t["recipient"] != "sozialamt-duisburg" for t in sent)
    text = run_cli("audit", "report", "--client", client, "--format", "text", "--lang", "en")
    assert "to suchtberatung-diakonie-du: substance use and addiction counselling" in text.stdout
    assert "Not transferred" in text.stdout and "not transferred, because" in text.stdout
    assert run_cli("audit", "report", "--client", client, "--format", "xml").exit_code == 2
    unknown = run_cli("audit", "report", "--client", "c-nobody")
    assert unknown.exit_code == 2 and "not known to casebridge" in unknown.stderr
    lines = run_cli("audit", "export").stdout.splitlines()
    # the import's consent_recorded entry (at the real time), six decisions of 2026-11-20, and
    # the two reports produced above (report access is itself audited, at the real time)
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    later = run_cli("audit", "export", "--since", "2026-11-21T00:00:00Z").stdout.splitlines()
    assert [json.loads(line)["kind"] for line in later] == [
        "consent_recorded", "report_accessed", "report_accessed"]
    window = run_cli("audit", "export", "--since", "2026-11-20T00:00:00Z",
                     "--until", "2026-11-21T00:00:00Z")
    assert len(window.stdout.splitlines()) == 6


@pytest.mark.parametrize(
    ("statement", "broken_at"),
    [
        ("UPDATE audit_entries SET outcome = 'permit' WHERE seq = 4", 4),
        ("DELETE FROM audit_entries WHERE seq = 2", 2),
        ("UPDATE audit_entries SET seq = 0 - seq WHERE seq IN (3, 5)", 3),
    ],
)
def test_audit_verify_finds_tampering(cli_env, run_cli, files, statement, broken_at) -> None:
    run_cli("consent", "import", str(files["consent_self"]))
    _fill_audit(cli_env)
    with sqlite3.connect(cli_env.removeprefix("sqlite:///")) as raw:
        raw.execute(statement)
    result = run_cli("audit", "verify")
    assert result.exit_code == 1
    assert f"BROKEN at entry {broken_at}" in result.stdout


def test_import_and_withdraw_from_the_cli_are_audited_like_the_api(
    cli_env, run_cli, files
) -> None:
    assert run_cli("consent", "import", str(files["consent_self"])).exit_code == 0
    assert run_cli("consent", "import", str(files["consent_self"])).exit_code == 0  # unchanged
    result = run_cli("consent", "withdraw", SELF_ID, "--by", "desk.person")
    assert result.exit_code == 0, result.stderr
    assert run_cli("consent", "withdraw", SELF_ID).exit_code != 0  # second: refused, no entry
    client_id = _client_id(run_cli)
    trail = AuditTrail(get_database(cli_env))
    events = [(e.kind, e.stage, e.consents, e.client_id) for e in trail.entries()]
    assert events == [
        ("consent_recorded", "cli", [SELF_ID], client_id),
        ("consent_withdrawn", "cli", [SELF_ID], client_id),
    ]
    by = [e.details["by"] for e in trail.entries()]
    assert by[1] == "desk.person" and by[0]
    assert trail.verify().ok


def test_audit_checkpoint_binds_the_heads_and_verify_checks_it(cli_env, run_cli, files) -> None:
    run_cli("consent", "import", str(files["consent_self"]))
    _fill_audit(cli_env)
    written = run_cli("audit", "checkpoint")
    assert written.exit_code == 0 and "chain heads bound" in written.stdout
    verified = run_cli("audit", "verify")
    assert verified.exit_code == 0 and "1 checkpoints" in verified.stdout
    with sqlite3.connect(cli_env.removeprefix("sqlite:///")) as raw:
        # cut the newest entry off and rewind its chain's head: only the checkpoint shows it
        chain, chain_seq = raw.execute(
            "SELECT chain, chain_seq FROM audit_entries WHERE chain >= 0 "
            "ORDER BY seq DESC LIMIT 1").fetchone()
        if chain_seq > 1:
            prev = raw.execute("SELECT hash FROM audit_entries WHERE chain = ? AND chain_seq = ?",
                               (chain, chain_seq - 1)).fetchone()[0]
        else:
            prev = "0" * 64
        raw.execute("DELETE FROM audit_entries WHERE chain = ? AND chain_seq = ?",
                    (chain, chain_seq))
        raw.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = ?",
                    (chain_seq - 1, prev, chain))
    result = run_cli("audit", "verify")
    assert result.exit_code == 1 and "checkpoint" in result.stdout
