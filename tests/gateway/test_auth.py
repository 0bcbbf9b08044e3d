"""Authentication: keys, passwords, the proxy certificate header, revocation, roles."""

from __future__ import annotations

import base64
import time

from fastapi.testclient import TestClient

from casebridge.db import get_database
from casebridge.gateway.principals import (
    ApiKeyRow,
    PrincipalRow,
    Role,
    revoke_key,
    set_cert_subject,
    set_disabled,
)
from casebridge.gateway.security import KeyCache
from casebridge.settings import Settings
from tests.gateway.conftest import Issue


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_no_credentials_is_401_problem(client: TestClient) -> None:
    r = client.get("/metrics")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert "Bearer" in r.headers["www-authenticate"]
    assert r.json()["code"] == "unauthenticated"


def test_inbound_authenticates_before_looking_at_the_request(
    client: TestClient, issue: Issue
) -> None:
    # The inbound route authenticates in its routing thread; an unknown caller must still learn
    # nothing about systems or content types, and a person's key is refused as on other routes.
    bad = {"Authorization": "Bearer cbk_0000000000000000_nope", "Content-Type": "text/plain"}
    for path in ("/v1/inbound/jobcenter", "/v1/inbound/no-such-system"):
        r = client.post(path, content=b"<x/>", headers=bad)
        assert (r.status_code, r.json()["code"]) == (401, "unauthenticated")
    assert client.post("/v1/inbound/jobcenter", content=b"<x/>").status_code == 401
    person = issue("desk.anna", role=Role.CONSENT_DESK)
    r = client.post("/v1/inbound/no-such-system", content=b"<x/>",
                    headers={**person.headers, "Content-Type": "text/plain"})
    assert r.status_code == 403


def test_admin_key_as_bearer_and_as_x_api_key(client: TestClient, issue: Issue) -> None:
    admin = issue("ops.admin", role=Role.ADMIN)
    assert client.get("/metrics", headers=admin.headers).status_code == 200
    assert client.get("/metrics", headers={"X-API-Key": admin.secret}).status_code == 200


def test_wrong_secret_with_a_real_key_id_is_refused(client: TestClient, issue: Issue) -> None:
    admin = issue("ops.admin", role=Role.ADMIN)
    forged = admin.secret[:-4] + ("AAAA" if not admin.secret.endswith("AAAA") else "BBBB")
    r = client.get("/metrics", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401
    for junk in ("x", "cbk_", "cbk_zz_zz", "Bearer", "a" * 5000):
        assert client.get("/metrics", headers={"X-API-Key": junk}).status_code == 401


def test_keys_are_stored_only_as_hashes(
    client: TestClient, issue: Issue, gateway_settings: Settings
) -> None:
    caller = issue("jobcenter-duisburg")
    db = get_database(gateway_settings.effective_database_url)
    with db.session() as session:
        row = session.get(ApiKeyRow, caller.key_id)
        assert row is not None
        secret_part = caller.secret.split("_", 2)[2]  # the secret may itself hold "_"
        stored = " ".join(str(v) for v in vars(row).values())
        assert secret_part not in stored and caller.secret not in stored
        assert len(row.key_hash) == 64


def test_revoked_key_stops_working_at_once(
    client: TestClient, issue: Issue, gateway_settings: Settings
) -> None:
    admin = issue("ops.admin", role=Role.ADMIN)
    spare = issue("ops.admin", role=Role.ADMIN)
    assert client.get("/metrics", headers=admin.headers).status_code == 200
    db = get_database(gateway_settings.effective_database_url)
    with db.session() as session:
        revoke_key(session, key_id=admin.key_id)
    r = client.get("/metrics", headers=admin.headers)
    assert r.status_code == 401
    # Rotation: the principal's other key keeps working.
    assert client.get("/metrics", headers=spare.headers).status_code == 200


def test_a_key_revoked_by_another_process_is_refused_within_the_cache_interval(
    client: TestClient, issue: Issue, gateway_settings: Settings
) -> None:
    # `casebridge keys revoke` runs in a process of its own: this gateway learns of it only from
    # the database, at the latest api_key_cache_seconds after the revocation committed.
    from datetime import UTC, datetime

    from sqlalchemy import update

    client.app.state.key_cache = KeyCache(1.5)  # type: ignore[attr-defined]
    admin = issue("ops.admin", role=Role.ADMIN)
    assert client.get("/metrics", headers=admin.headers).status_code == 200
    db = get_database(gateway_settings.effective_database_url)
    with db.session() as session:  # what the other process's revocation leaves in the store
        session.execute(update(ApiKeyRow).where(ApiKeyRow.key_id == admin.key_id)
                        .values(revoked_at=datetime.now(UTC)))
    revoked = time.monotonic()
    answers = []
    while time.monotonic() - revoked < 3.0:
        waited = time.monotonic() - revoked
        status = client.get("/metrics", headers=admin.headers).status_code
        answers.append((waited, status))
        if status != 200:
            break
        time.sleep(0.1)
    assert answers[0][1] == 200  # the look-up was reused: the key was not read again
    assert answers[-1][1] == 401
    assert all(waited < 1.5 for waited, status in answers if status == 200), answers


def test_without_the_cache_every_request_reads_the_key(
    client: TestClient, issue: Issue, gateway_settings: Settings
) -> None:
    client.app.state.key_cache = KeyCache(0)  # type: ignore[attr-defined]
    admin = issue("ops.admin", role=Role.ADMIN)
    assert client.get("/metrics", headers=admin.headers).status_code == 200
    db = get_database(gateway_settings.effective_database_url)
    with db.session() as session:
        session.execute(update_revoked(admin.key_id))
    assert client.get("/metrics", headers=admin.headers).status_code == 401


def update_revoked(key_id: str):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from sqlalchemy import update

    return update(ApiKeyRow).where(ApiKeyRow.key_id == key_id).values(
        revoked_at=datetime.now(UTC))


def test_disabled_principal_is_refused_with_every_key(
    client: TestClient, issue: Issue, gateway_settings: Settings
) -> None:
    admin = issue("ops.admin", role=Role.ADMIN)
    db = get_database(gateway_settings.effective_database_url)
    with db.session() as session:
        set_disabled(session, name="ops.admin", disabled=True)
    assert client.get("/metrics", headers=admin.headers).status_code == 401


def test_staff_password_via_basic(client: TestClient, issue: Issue) -> None:
    issue("ops.admin", role=Role.ADMIN, password="correct horse battery")
    ok = client.get("/metrics", headers=_basic("ops.admin", "correct horse battery"))
    assert ok.status_code == 200
    assert client.get("/metrics", headers=_basic("ops.admin", "wrong")).status_code == 401
    assert client.get("/metrics", headers=_basic("nobody", "x")).status_code == 401
    bad = client.get("/metrics", headers={"Authorization": "Basic %%%"})
    assert bad.status_code == 401 and bad.json()["code"] == "unauthenticated"


def test_passwords_are_stored_as_scrypt(
    client: TestClient, issue: Issue, gateway_settings: Settings
) -> None:
    issue("ops.admin", role=Role.ADMIN, password="correct horse battery")
    db = get_database(gateway_settings.effective_database_url)
    with db.session() as session:
        row = session.get(PrincipalRow, "ops.admin")
        assert row is not None and row.password_hash is not None
        assert row.password_hash.startswith("scrypt$")
        assert "correct horse" not in row.password_hash


def test_role_without_permission_is_403(client: TestClient, issue: Issue) -> None:
    for name, role in (("desk", Role.CONSENT_DESK), ("dpo.anna", Role.DPO)):
        r = client.get("/metrics", headers=issue(name, role=role).headers)
        assert r.status_code == 403
        assert r.json()["code"] == "forbidden"
    agency = issue("jobcenter-duisburg")
    assert client.get("/metrics", headers=agency.headers).status_code == 403


def test_cert_header_ignored_unless_from_trusted_proxy(
    client: TestClient, issue: Issue, gateway_settings: Settings
) -> None:
    db = get_database(gateway_settings.effective_database_url)
    issue("jobcenter-duisburg")
    with db.session() as session:
        set_cert_subject(session, agency="jobcenter-duisburg", subject="CN=jobcenter-duisburg")
    header = {gateway_settings.client_cert_header: "CN=jobcenter-duisburg"}
    # No trusted proxy configured: the header alone is nobody.
    assert client.get("/metrics", headers=header).status_code == 401
    # From the trusted proxy (TestClient's peer is "testclient") it authenticates the agency,
    # which may not read metrics: 403, not 401.
    client.app.state.settings = gateway_settings.model_copy(
        update={"trusted_proxies": ["testclient"]}
    )
    assert client.get("/metrics", headers=header).status_code == 403
    unknown = {gateway_settings.client_cert_header: "CN=someone-else"}
    assert client.get("/metrics", headers=unknown).status_code == 401


def test_trusted_proxy_matches_addresses_and_networks() -> None:
    from casebridge.gateway.security import is_trusted_proxy

    assert is_trusted_proxy("10.244.3.7", ["10.244.0.0/16"])
    assert is_trusted_proxy("172.28.0.10", ["172.28.0.10"])
    assert not is_trusted_proxy("172.28.0.11", ["172.28.0.10"])
    assert not is_trusted_proxy("10.245.0.1", ["10.244.0.0/16"])
    assert not is_trusted_proxy("10.244.3.7", [])
    assert not is_trusted_proxy(None, ["10.244.0.0/16"])
    assert is_trusted_proxy("::1", ["::1/128"])
