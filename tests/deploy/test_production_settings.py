"""Production refuses embedded defaults and default credentials; secrets come from files."""

from __future__ import annotations

from pathlib import Path

import pytest

from casebridge.errors import ConfigError
from casebridge.settings import Settings, get_settings

GOOD_DB = "postgresql+psycopg://casebridge:s3cr3t-Xy-9wLq@db:5432/casebridge"
GOOD_BROKER = "amqp://casebridge:s3cr3t-Xy-9wLq@rabbitmq-1:5672//"


@pytest.fixture
def production(monkeypatch):
    """A clean production environment: no CASEBRIDGE_* variable but the environment."""
    import os

    for name in list(os.environ):
        if name.startswith("CASEBRIDGE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CASEBRIDGE_ENVIRONMENT", "production")
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("db", "broker", "complaint"),
    [
        (GOOD_DB, "amqp://rabbitmq-1:5672//", "guest"),  # kombu falls back to guest/guest
        (GOOD_DB, "amqp://guest:other@rabbitmq-1//", "guest"),
        (GOOD_DB, f"{GOOD_BROKER};amqp://guest:guest@rabbitmq-2//", "guest"),  # failover list
        ("postgresql+psycopg://postgres:postgres@db/casebridge", GOOD_BROKER, "default password"),
        ("postgresql+psycopg://casebridge:changeme@db/casebridge", GOOD_BROKER, "default password"),
        ("sqlite:////var/lib/casebridge/casebridge.db", GOOD_BROKER, "server database"),
        (GOOD_DB, "sqla+sqlite:////var/lib/casebridge/broker.db", "amqp"),
        (GOOD_DB, "memory://", "amqp"),
    ],
)
def test_production_refuses(production, db, broker, complaint) -> None:
    production.setenv("CASEBRIDGE_DATABASE_URL", db)
    production.setenv("CASEBRIDGE_BROKER_URL", broker)
    with pytest.raises(ConfigError, match=complaint):
        get_settings()


def test_production_accepts_failover_list_with_real_credentials(production) -> None:
    production.setenv("CASEBRIDGE_DATABASE_URL", GOOD_DB)
    production.setenv(
        "CASEBRIDGE_BROKER_URL", f"{GOOD_BROKER};{GOOD_BROKER.replace('-1', '-2')}"
    )
    assert get_settings().broker_url is not None


def test_secrets_are_read_from_files(production, tmp_path) -> None:
    (tmp_path / "db").write_text(GOOD_DB + "\n")
    (tmp_path / "broker").write_text(GOOD_BROKER)
    (tmp_path / "proxies").write_text('["172.28.0.10"]\n')
    production.setenv("CASEBRIDGE_DATABASE_URL_FILE", str(tmp_path / "db"))
    production.setenv("CASEBRIDGE_BROKER_URL_FILE", str(tmp_path / "broker"))
    production.setenv("CASEBRIDGE_TRUSTED_PROXIES_FILE", str(tmp_path / "proxies"))
    settings = get_settings()
    assert settings.database_url == GOOD_DB  # the trailing newline of the file is not part of it
    assert settings.broker_url == GOOD_BROKER
    assert settings.trusted_proxies == ["172.28.0.10"]  # JSON settings are decoded as in env


def test_a_secret_file_with_default_credentials_is_refused_too(production, tmp_path) -> None:
    (tmp_path / "broker").write_text("amqp://guest:guest@rabbitmq-1//")
    production.setenv("CASEBRIDGE_DATABASE_URL", GOOD_DB)
    production.setenv("CASEBRIDGE_BROKER_URL_FILE", str(tmp_path / "broker"))
    with pytest.raises(ConfigError, match="guest"):
        get_settings()


def test_missing_secret_file_is_a_config_error_without_the_path_content(production) -> None:
    production.setenv("CASEBRIDGE_DATABASE_URL_FILE", "/nonexistent/casebridge-db-url")
    production.setenv("CASEBRIDGE_BROKER_URL", GOOD_BROKER)
    with pytest.raises(ConfigError, match="CASEBRIDGE_DATABASE_URL_FILE: cannot read"):
        get_settings()


def test_value_and_file_together_are_ambiguous(production, tmp_path) -> None:
    (tmp_path / "db").write_text(GOOD_DB)
    production.setenv("CASEBRIDGE_DATABASE_URL", GOOD_DB)
    production.setenv("CASEBRIDGE_DATABASE_URL_FILE", str(tmp_path / "db"))
    production.setenv("CASEBRIDGE_BROKER_URL", GOOD_BROKER)
    with pytest.raises(ConfigError, match="not both"):
        get_settings()


def test_local_environment_keeps_embedded_defaults(tmp_path) -> None:
    settings = Settings(environment="local", data_dir=tmp_path)
    assert settings.effective_database_url.startswith("sqlite:///")


def _routes(tmp_path, delivery: str) -> str:
    from casebridge.routing.routes import demo_route_table_text

    text = demo_route_table_text()
    lines = [line for line in text.splitlines() if "delivery:" in line]
    path = tmp_path / "routes.yaml"
    path.write_text(text.replace(lines[0].split("delivery:", 1)[1], " " + delivery, 1))
    return str(path)


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("CASEBRIDGE_TRUSTED_PROXIES", '["0.0.0.0/0"]', "CASEBRIDGE_TRUSTED_PROXIES"),
        ("CASEBRIDGE_TRUSTED_PROXIES", '["::/0"]', "CASEBRIDGE_TRUSTED_PROXIES"),
        ("CASEBRIDGE_TRUSTED_PROXIES", '["172.28.0.10", "8.8.8.0/24"]',
         "CASEBRIDGE_TRUSTED_PROXIES"),
        ("CASEBRIDGE_CONSOLE_COOKIE_SECURE", "false", "CASEBRIDGE_CONSOLE_COOKIE_SECURE"),
        ("CASEBRIDGE_DATABASE_URL", "postgresql+psycopg://casebridge@db/cb",
         "CASEBRIDGE_DATABASE_URL names no password"),
        ("CASEBRIDGE_DATABASE_URL", "postgresql+psycopg://casebridge:123456@db/cb",
         "CASEBRIDGE_DATABASE_URL has a weak password"),
        ("CASEBRIDGE_DATABASE_URL", "postgresql+psycopg://casebridge:Password2024!@db/cb",
         "CASEBRIDGE_DATABASE_URL has a weak password (a well-known password)"),
        ("CASEBRIDGE_BROKER_URL", "amqp://casebridge:@rabbitmq-1//",
         "CASEBRIDGE_BROKER_URL names no password"),
        ("CASEBRIDGE_BROKER_URL", "amqp://casebridge:qwertyuiop12@rabbitmq-1//",
         "CASEBRIDGE_BROKER_URL has a weak password"),
    ],
)
def test_production_refuses_unsafe_settings(production, variable, value, complaint) -> None:
    production.setenv("CASEBRIDGE_DATABASE_URL", GOOD_DB)
    production.setenv("CASEBRIDGE_BROKER_URL", GOOD_BROKER)
    production.setenv(variable, value)
    with pytest.raises(ConfigError, match=complaint.replace("(", r"\(").replace(")", r"\)")):
        get_settings()


@pytest.mark.parametrize(
    ("delivery", "complaint"),
    [
        ('{mode: push, url: "http://jc.example.invalid/inbox", signing_secret_files: [/s]}',
         "url must be https://"),
        ('{mode: push, url: "http://jc.example.invalid/inbox", signing_secret_files: [/s], '
         "allow_insecure_http: true}", "url must be https://"),  # not on loopback
        ('{mode: push, url: "https://jc.example.invalid/inbox"}', "needs signing_secret_files"),
    ],
)
def test_production_refuses_unsafe_push_targets(production, tmp_path, delivery, complaint):
    production.setenv("CASEBRIDGE_DATABASE_URL", GOOD_DB)
    production.setenv("CASEBRIDGE_BROKER_URL", GOOD_BROKER)
    production.setenv("CASEBRIDGE_ROUTE_TABLE", _routes(tmp_path, delivery))
    with pytest.raises(ConfigError, match=f"CASEBRIDGE_ROUTE_TABLE: .*agencies.0.delivery.*"
                                           f"{complaint}"):
        get_settings()


def test_production_accepts_plain_http_to_a_loopback_recipient_when_allowed(production, tmp_path):
    from casebridge.routing.routes import load_route_table

    production.setenv("CASEBRIDGE_DATABASE_URL", GOOD_DB)
    production.setenv("CASEBRIDGE_BROKER_URL", GOOD_BROKER)
    table = load_route_table(Path(_routes(tmp_path, '{mode: pull}')))
    complaints = table.production_problems()
    assert complaints and all("signing_secret_files" in c for c in complaints)
    allowed = ('{mode: push, url: "http://127.0.0.1:9000/inbox", signing_secret_files: [/s], '
               "allow_insecure_http: true}")
    routes = Path(_routes(tmp_path, allowed))
    assert not [p for p in load_route_table(routes).production_problems() if "agencies.0." in p]


def test_weak_passwords() -> None:
    from casebridge.passwords import weakness

    assert weakness("123456") == "shorter than 12 characters"
    for weak in ("123456789012", "Password2024!", "qwertyuiop12", "!!Willkommen123",
                 "aaaaaaaaaaaa"):
        assert weakness(weak) is not None, weak
    assert weakness("correct horse battery staple") is None
    assert weakness("Vq8-long-Kx2m") is None


def test_only_the_gateway_needs_a_shared_rate_limit_storage(production) -> None:
    production.setenv("CASEBRIDGE_DATABASE_URL", GOOD_DB)
    production.setenv("CASEBRIDGE_BROKER_URL", GOOD_BROKER)
    settings = get_settings()  # workers and migrations start without one
    assert [p.split(" must")[0] for p in settings.gateway_problems()] == [
        "CASEBRIDGE_RATE_LIMIT_STORAGE"
    ]
    shared = settings.model_copy(update={"rate_limit_storage": "redis://:pw@redis:6379/0"})
    assert shared.gateway_problems() == []
    local = settings.model_copy(update={"environment": "local"})
    assert local.gateway_problems() == []  # one local process may count in memory
