"""deploy/compose.yaml: valid against the Compose Specification and safe by construction.

No Docker engine runs in CI, so the file is validated rather than run: against the official
compose-spec JSON Schema (vendored in check-jsonschema, origin
https://github.com/compose-spec/compose-spec/blob/main/schema/compose-spec.json), then semantic
rules the schema cannot express.
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest
import yaml

from casebridge.settings import Settings
from tests.deploy.conftest import DEPLOY, venv_tool

COMPOSE = DEPLOY / "compose.yaml"
CASEBRIDGE_SERVICES = ("gateway", "worker", "migrate")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _check_jsonschema(path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [venv_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_valid_against_the_compose_spec_schema() -> None:
    result = _check_jsonschema(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_file(tmp_path, compose) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["gateway"]["healthcheck"]["intervall"] = "15s"  # a typo
    broken["services"]["worker"]["deploy"]["replicas"] = "three"
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = _check_jsonschema(path)
    assert result.returncode != 0
    assert "intervall" in result.stdout or "intervall" in result.stderr


def test_every_long_running_service_has_a_healthcheck_and_restart_policy(compose) -> None:
    for name, service in compose["services"].items():
        if service.get("restart") == "no":  # one-shot jobs (the migration)
            continue
        check = service.get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name}: no healthcheck"
        assert service.get("restart") in {"always", "unless-stopped", "on-failure"}, name


def test_only_the_proxy_publishes_a_port(compose) -> None:
    published = {name for name, s in compose["services"].items() if s.get("ports")}
    assert published == {"proxy"}
    assert compose["services"]["proxy"]["ports"] == ["443:8443"]


def test_networks_isolate_everything_but_the_proxy_and_worker_egress(compose) -> None:
    assert compose["networks"]["internal"]["internal"] is True
    for name, service in compose["services"].items():
        networks = set(service.get("networks", {}))
        assert "internal" in networks, name
        assert ("edge" in networks) == (name == "proxy"), name
        assert ("egress" in networks) == (name == "worker"), name


def test_secrets_referenced_exist_and_are_generated(compose) -> None:
    defined = compose["secrets"]
    generator = (DEPLOY / "secrets" / "generate.sh").read_text()
    for name, service in compose["services"].items():
        for ref in service.get("secrets", []):
            source = ref if isinstance(ref, str) else ref["source"]
            assert source in defined, f"{name} uses undefined secret {source}"
    for name, secret in defined.items():
        assert secret["file"] == f"./secrets/{name}"
        assert re.search(rf"\b{name}\b", generator), f"generate.sh does not write {name}"
    for name, config in compose["configs"].items():
        assert (DEPLOY / config["file"]).is_file(), f"config {name}: {config['file']} missing"


def test_no_secret_in_the_environment(compose) -> None:
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            assert not re.search(r"PASSWORD$|PASS$|_URL$|SECRET|TOKEN|COOKIE", key), (name, key)
            assert "://" not in str(value) or str(value).startswith("http://127.0.0.1"), name


def test_casebridge_services_are_production_hardened(compose) -> None:
    fields = set(Settings.model_fields)
    for name in CASEBRIDGE_SERVICES:
        service = compose["services"][name]
        env = service["environment"]
        assert env["CASEBRIDGE_ENVIRONMENT"] == "production"
        assert env["CASEBRIDGE_DATABASE_URL_FILE"].startswith("/run/secrets/")
        assert env["CASEBRIDGE_BROKER_URL_FILE"].startswith("/run/secrets/")
        for key in env:
            setting = key.removeprefix("CASEBRIDGE_").removesuffix("_FILE").lower()
            assert setting in fields, f"{name}: {key} is not a casebridge setting"
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]
        assert service["image"] == compose["services"]["gateway"]["image"]  # one image


def test_gateway_scales_and_workers_are_replicated(compose) -> None:
    gateway, worker = compose["services"]["gateway"], compose["services"]["worker"]
    assert gateway["deploy"]["replicas"] >= 2 and "container_name" not in gateway
    assert worker["deploy"]["replicas"] >= 2 and "container_name" not in worker
    assert worker["command"][0] == "worker" and gateway["command"][0] == "serve"
    for dependency in ("migrate", "rabbitmq-1", "rabbitmq-2", "rabbitmq-3"):
        assert dependency in gateway["depends_on"] and dependency in worker["depends_on"]
    assert gateway["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert compose["services"]["migrate"]["command"] == ["db", "upgrade"]


def test_client_certificate_header_is_trusted_only_from_the_proxy(compose) -> None:
    proxy_ip = compose["services"]["proxy"]["networks"]["internal"]["ipv4_address"]
    env = compose["services"]["gateway"]["environment"]
    assert json.loads(env["CASEBRIDGE_TRUSTED_PROXIES"]) == [proxy_ip]
    header = env["CASEBRIDGE_CLIENT_CERT_HEADER"]
    nginx = (DEPLOY / "nginx" / "casebridge.conf").read_text()
    # proxy_set_header replaces whatever the client sent under that name.
    assert re.search(rf"proxy_set_header {re.escape(header)} \$client_subject;", nginx)
    assert "ssl_verify_client optional;" in nginx
    assert "listen 8443 ssl;" in nginx


def test_three_node_rabbitmq_cluster_with_quorum_queues(compose) -> None:
    nodes = [n for n in compose["services"] if n.startswith("rabbitmq-")]
    assert len(nodes) == 3
    conf = (DEPLOY / "rabbitmq" / "rabbitmq.conf").read_text()
    assert "cluster_formation.peer_discovery_backend = classic_config" in conf
    assert re.search(r"^default_queue_type = quorum$", conf, re.M)
    for node in nodes:
        service = compose["services"][node]
        assert service["hostname"] == node
        assert f"= rabbit@{node}" in conf
        assert "rabbitmq_erlang_cookie" in service["secrets"]
        assert any(v.endswith(":/var/lib/rabbitmq") for v in service["volumes"])


def test_postgres_keeps_its_data_in_a_volume(compose) -> None:
    postgres = compose["services"]["postgres"]
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    assert "postgres-data" in compose["volumes"]
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"


def test_secret_generator_writes_what_production_settings_accept(tmp_path, monkeypatch) -> None:
    import shutil

    if not shutil.which("openssl"):
        pytest.fail("openssl is needed by deploy/secrets/generate.sh")
    folder = tmp_path / "secrets"
    folder.mkdir()
    shutil.copy(DEPLOY / "secrets" / "generate.sh", folder)
    subprocess.run(["bash", str(folder / "generate.sh")], check=True, capture_output=True)
    compose = yaml.safe_load(COMPOSE.read_text())
    for name in compose["secrets"]:
        assert (folder / name).stat().st_size > 0, name
        assert (folder / name).stat().st_mode & 0o004, f"{name} unreadable for a non-root uid"
    assert not (folder / "client_ca.key").stat().st_mode & 0o077  # the CA key stays private
    for key in list(__import__("os").environ):
        if key.startswith("CASEBRIDGE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CASEBRIDGE_ENVIRONMENT", "production")
    monkeypatch.setenv("CASEBRIDGE_DATABASE_URL_FILE", str(folder / "casebridge_database_url"))
    monkeypatch.setenv("CASEBRIDGE_BROKER_URL_FILE", str(folder / "casebridge_broker_url"))
    settings = Settings()
    assert settings.broker_url is not None and settings.broker_url.count("amqp://") == 3
    password = (folder / "postgres_password").read_text()
    assert f":{password}@postgres:5432/" in str(settings.database_url)
    storage = compose["services"]["gateway"]["environment"]["CASEBRIDGE_RATE_LIMIT_STORAGE_FILE"]
    monkeypatch.setenv("CASEBRIDGE_RATE_LIMIT_STORAGE_FILE",
                       str(folder / storage.removeprefix("/run/secrets/")))
    gateway = Settings()
    assert gateway.gateway_problems() == []
    redis_password = (folder / "redis_password").read_text()
    assert gateway.rate_limit_storage == f"redis://:{redis_password}@redis:6379/0"
    # A second run keeps every existing secret (no accidental rotation).
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    subprocess.run(["bash", str(folder / "generate.sh")], check=True, capture_output=True)
    assert before == {p.name: p.read_bytes() for p in folder.iterdir()}


def test_the_gateway_trusts_the_proxy_address_and_nothing_else(compose) -> None:
    from casebridge.gateway.security import is_trusted_proxy

    env = compose["services"]["gateway"]["environment"]
    trusted = json.loads(env["CASEBRIDGE_TRUSTED_PROXIES"])
    assert is_trusted_proxy("172.28.0.10", trusted)
    assert not is_trusted_proxy("172.28.0.11", trusted)  # a gateway or worker container


def test_rabbitmq_config_only_uses_keys_of_enabled_plugins(compose) -> None:
    # RabbitMQ refuses to start on a key of a plugin that is not enabled (e.g. management.*).
    conf = (DEPLOY / "rabbitmq" / "rabbitmq.conf").read_text()
    image = compose["services"]["rabbitmq-1"]["image"]
    if "management" not in image:
        assert not re.search(r"^management\.", conf, re.M)


def test_the_proxy_rate_limits_sign_in_and_inbound() -> None:
    nginx = (DEPLOY / "nginx" / "casebridge.conf").read_text()
    zones = dict(re.findall(r"limit_req_zone \$binary_remote_addr zone=(\w+):\d+m rate=(\S+);",
                            nginx))
    assert set(zones) == {"casebridge_login", "casebridge_inbound"}
    login = re.search(r"location = /console/login \{(.*?)\}", nginx, re.S)
    inbound = re.search(r"location /v1/inbound/ \{(.*?)\}", nginx, re.S)
    assert login and "limit_req zone=casebridge_login" in login.group(1)
    assert inbound and "limit_req zone=casebridge_inbound" in inbound.group(1)
    assert "limit_req_status 429;" in nginx


def test_every_push_recipient_has_its_signing_secret_mounted_for_the_workers(compose) -> None:
    from casebridge.routing.routes import PushDelivery, load_route_table

    table = load_route_table(DEPLOY / "config" / "routes.yaml")
    assert table.production_problems() == []
    targets = {s["target"] for s in compose["services"]["worker"]["secrets"]
               if isinstance(s, dict)}
    for agency in table.config.agencies:
        if isinstance(agency.delivery, PushDelivery):
            for path in agency.delivery.signing_secret_files:
                assert str(path) in targets, path


def test_the_gateways_share_failed_login_counters_in_a_private_redis(compose) -> None:
    services = compose["services"]
    redis, gateway = services["redis"], services["gateway"]
    storage = gateway["environment"]["CASEBRIDGE_RATE_LIMIT_STORAGE_FILE"]
    assert storage.removeprefix("/run/secrets/") in gateway["secrets"]
    assert gateway["depends_on"]["redis"]["condition"] == "service_healthy"
    # only the gateway holds the URL; the workers and the migration do not count logins
    for name in ("worker", "migrate"):
        assert "casebridge_rate_limit_storage" not in str(services[name].get("secrets"))
    assert redis["networks"] == ["internal"] and not redis.get("ports")
    assert redis["read_only"] is True and redis["cap_drop"] == ["ALL"]
    assert redis["secrets"] == ["redis_password"] and redis["user"].split(":")[0] != "0"
    # the password is read from the secret file, never written into the command line
    assert "/run/secrets/redis_password" in redis["command"][0]
    assert "--save ''" in redis["command"][0]  # counters are not persisted
    assert redis["deploy"]["resources"]["limits"]["memory"]
