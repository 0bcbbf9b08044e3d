"""Production refuses embedded defaults and default credentials; secrets come from files."""

from __future__ import annotations

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
