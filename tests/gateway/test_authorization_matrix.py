"""The authorization matrix: every operation of the OpenAPI document against every role.

A role the operation is not for gets 403 (before its body or parameters are looked at), a caller
without credentials 401, and a role it is for gets past authorization (whatever its dummy input
then earns). The expected roles are the table in docs/gateway.md, written out here once more on
purpose: a route that changes its dependency fails this test.
"""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from casebridge.gateway.principals import Role
from tests.gateway.conftest import Issue

AGENCY, DESK, DPO, ADMIN = "agency", "consent_desk", "dpo", "admin"
EXPECTED = (
    (r"^/v1/(inbound|outbox|referrals)", {AGENCY}),
    (r"^/v1/(consents|clients)", {DESK, ADMIN}),
    # the consent desk serves the client in person: it finds persons and produces the report
    (r"^/v1/audit/clients/\{client_id\}/report", {DPO, DESK}),
    (r"^/v1/persons", {DPO, DESK}),
    (r"^/v1/audit", {DPO}),
    (r"^/metrics$", {ADMIN}),
)


def _allowed(path: str) -> set[str] | None:
    for pattern, roles in EXPECTED:
        if re.match(pattern, path):
            return roles
    return None  # open: health probes


def test_every_operation_admits_exactly_its_roles(client: TestClient, issue: Issue) -> None:
    keys = {
        AGENCY: issue("jobcenter-duisburg").headers,
        DESK: issue("desk.matrix", role=Role.CONSENT_DESK).headers,
        DPO: issue("dpo.matrix", role=Role.DPO).headers,
        ADMIN: issue("admin.matrix", role=Role.ADMIN).headers,
    }
    schema = client.get("/openapi.json").json()
    seen = 0
    for template, operations in schema["paths"].items():
        path = re.sub(r"\{(\w*id)\}", "1", template).replace("{system}", "jobcenter")
        allowed = _allowed(template)
        for method in operations:
            seen += 1
            call = {"method": method.upper(), "url": path}
            if method in ("post", "put", "patch"):
                call.update(content=b"{}", headers={"Content-Type": "application/json"})
            anonymous = client.request(**call)
            if allowed is None:
                assert anonymous.status_code < 400, (method, template)
                continue
            assert anonymous.status_code == 401, (method, template, anonymous.status_code)
            for role, headers in keys.items():
                answer = client.request(**{**call, "headers": {**call.get("headers", {}),
                                                               **headers}})
                if role in allowed:
                    assert answer.status_code not in (401, 403), (method, template, role)
                else:
                    assert answer.status_code == 403, (method, template, role,
                                                       answer.status_code)
    assert seen >= 20
